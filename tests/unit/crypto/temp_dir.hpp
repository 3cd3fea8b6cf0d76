#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>

namespace test {

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class TempDir
{
public:
  TempDir()
  {
    const auto base = std::filesystem::temp_directory_path() / "jtr-crypto-XXXXXX";
    std::string pattern = base.string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    m_path = pattern;
  }
  ~TempDir()
  {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] std::string path(const std::string& name) const { return (m_path / name).string(); }

  // Writes `content` to `name` with exactly `mode` (chmod after create, so umask does not
  // interfere) and returns the path.
  std::string write(const std::string& name, const std::string& content, mode_t mode) const
  {
    const auto p = path(name);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    ::chmod(p.c_str(), mode);
    return p;
  }

private:
  std::filesystem::path m_path;
};

} // namespace test
