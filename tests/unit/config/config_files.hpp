#pragma once

#include "config/loader.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace test {

// A fresh directory with the files the config tests' YAML names through @DIR@: an
// admin token and a bootstrap token (0600), a bootstrap token others may read
// (loose-boot, 0644) and a recipient key. Removed with everything in it at scope exit.
class ConfigFiles
{
public:
  ConfigFiles()
  {
    std::string tmpl = (std::filesystem::temp_directory_path() / "jtr-config-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    m_dir = tmpl;
    ::chmod(m_dir.c_str(), 0755);
    write("admin-token", "11000000000000000000000000000000ff\n");
    write("boot", "11000000000000000000000000000000aa\n");
    write("loose-boot", "11000000000000000000000000000000aa\n", 0644);
    write("deploy.pub", "Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n", 0644);
  }
  ~ConfigFiles()
  {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
  ConfigFiles(const ConfigFiles&) = delete;
  ConfigFiles& operator=(const ConfigFiles&) = delete;

  void write(const std::string& name, const std::string& content, mode_t mode = 0600) const
  {
    const auto p = path(name);
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
  }
  [[nodiscard]] std::string path(const std::string& name) const { return m_dir + "/" + name; }
  // `text` with every @DIR@ replaced by this directory.
  [[nodiscard]] std::string sub(std::string text) const
  {
    for (auto pos = text.find("@DIR@"); pos != std::string::npos; pos = text.find("@DIR@")) {
      text.replace(pos, 5, m_dir);
    }
    return text;
  }
  // `yaml` (with @DIR@ replaced) loaded as the file c.yaml.
  [[nodiscard]] util::Result<config::Config> load(const std::string& yaml) const
  {
    return config::load_from_string(sub(yaml), "c.yaml");
  }
  // The error message of loading `yaml`, or "" when it loads.
  [[nodiscard]] std::string errors(const std::string& yaml) const
  {
    auto r = load(yaml);
    return r ? std::string() : r.error().message;
  }

private:
  std::string m_dir;
};

} // namespace test
