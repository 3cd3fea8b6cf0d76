// The config loader on arbitrary text: YAML → Config or diagnostics. The text is loaded
// from memory (config::load_from_string), so the mode check of the config file itself is
// not exercised here (config/file_checks has unit tests). The files a config names are
// real: LLVMFuzzerInitialize makes a directory that holds what conf/*.yaml refer to
// (recipient keys, token files, the hook) with the modes the loader wants, the config
// "lives" there, and CREDENTIALS_DIRECTORY points at it, so the seeds load in full.
// Oracles: no crash, hang or leak; a failure is of kind "config" and names the file.
#include "config/loader.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

namespace fs = std::filesystem;

std::string g_name; // the config's path, in the fixture directory

void
write(const fs::path& p, const std::string& text, fs::perms mode)
{
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
  fs::permissions(p, mode);
}

void
remove_fixture()
{
  std::error_code ec;
  fs::remove_all(fs::path(g_name).parent_path(), ec);
}

} // namespace

extern "C" int
LLVMFuzzerInitialize(int*, char***)
{
  std::string tmpl = (fs::temp_directory_path() / "jtr-fuzz-config-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::abort();
  }
  const fs::path dir = tmpl;
  const fs::path conf = fs::path(JTR_SOURCE_DIR) / "conf";
  for (const auto* key : { "deploy.pub", "deploy-next.pub" }) {
    fs::create_directories(dir / "recipients");
    fs::copy_file(conf / "recipients" / key, dir / "recipients" / key);
    fs::copy_file(conf / "recipients" / key, dir / key);
  }
  fs::create_directories(dir / "hooks");
  fs::copy_file(conf / "hooks" / "publish-token", dir / "hooks" / "publish-token");
  const auto owner_only = fs::perms::owner_read | fs::perms::owner_write;
  write(dir / "ci-admin-token", "11" + std::string(32, 'a') + "\n", owner_only);
  write(dir / "admin-token", "11" + std::string(32, 'b') + "\n", owner_only);
  write(dir / "http-token", "s3cret\n", owner_only);
  ::setenv("CREDENTIALS_DIRECTORY", dir.c_str(), 1);
  g_name = (dir / "fuzz.yaml").string();
  std::atexit(remove_fixture);
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto config = config::load_from_string(text, g_name);
  if (!config) {
    const auto& e = config.error();
    if (e.kind != "config" || e.message.find("fuzz.yaml") == std::string::npos) {
      std::abort();
    }
  }
  return 0;
}
