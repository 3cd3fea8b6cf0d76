#include "emulator_process.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <sodium.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <jenkins/embedded_scripts.hpp>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace test_emu {

namespace {

constexpr const char* k_java_home = "/usr/lib/jvm/java-17-openjdk-amd64";
constexpr const char* k_groovy_jar = "/usr/share/groovy/lib/groovy-2.4.21.jar";
// The first start compiles the emulator (~10 s alone, much more on a busy machine).
constexpr int k_startup_seconds = 300;

std::string
java_home()
{
  const char* env = std::getenv("JAVA_HOME");
  return env != nullptr && *env != '\0' ? env : k_java_home;
}

std::filesystem::path
source_dir()
{
  const char* root = std::getenv("JTR_SOURCE_DIR");
  if (root == nullptr) {
    throw std::runtime_error("JTR_SOURCE_DIR is not set");
  }
  return root;
}

} // namespace

std::string
missing_tools()
{
  const auto java = std::filesystem::path(java_home()) / "bin" / "java";
  if (access(java.c_str(), X_OK) != 0) {
    return fmt::format("no JDK at {} (set JAVA_HOME)", java.string());
  }
  if (access(k_groovy_jar, R_OK) != 0) {
    return fmt::format("no Groovy at {} (apt-get install groovy)", k_groovy_jar);
  }
  if (std::getenv("JTR_SOURCE_DIR") == nullptr) {
    return "JTR_SOURCE_DIR is not set";
  }
  return {};
}

std::string
sha256_hex(std::string_view text)
{
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  std::string out;
  for (const auto b : digest) {
    out += fmt::format("{:02x}", b);
  }
  return out;
}

std::set<std::string>
known_script_hashes()
{
  std::set<std::string> out;
  for (const auto& s : jenkins::embedded::k_scripts) {
    out.insert(sha256_hex(s.text));
  }
  return out;
}

EmulatorProcess::EmulatorProcess(Options options)
  : m_options(std::move(options))
{
  char dir[] = "/tmp/jtr-emu-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  m_data = dir;
  start();
}

EmulatorProcess::~EmulatorProcess()
{
  stop();
  std::error_code ec;
  std::filesystem::remove_all(m_data, ec);
}

void
EmulatorProcess::start()
{
  const auto run = source_dir() / "tests" / "jenkins-emulator" / "run";
  std::vector<std::string> args = { run.string(), "--port",         "0", "--data", m_data.string(),
                                    "--version",  m_options.version };
  if (!m_options.timezone.empty()) {
    args.insert(args.end(), { "--timezone", m_options.timezone });
  }
  if (!m_options.users.empty()) {
    std::string users;
    for (const auto& u : m_options.users) {
      users += (users.empty() ? "" : ",") + u;
    }
    args.insert(args.end(), { "--users", users });
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const auto err_path = (m_data / "emulator.stderr").string();
  const auto jh = java_home();
  m_pid = fork();
  if (m_pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (m_pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (err >= 0) {
      dup2(err, STDERR_FILENO);
    }
    setenv("JAVA_HOME", jh.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(k_startup_seconds);
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    pollfd p{ out[0], POLLIN, 0 };
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    char buf[4096];
    const auto n = read(out[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  const auto info = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  if (info.is_discarded() || !info.is_object()) {
    stop();
    throw std::runtime_error(fmt::format("the emulator did not start; see {}", err_path));
  }
  m_url = info.at("url").get<std::string>();
  m_admin_user = info.at("admin_user").get<std::string>();
  m_admin_token = info.at("admin_token").get<std::string>();

  net::ClientOptions o;
  o.name = "emu";
  o.url = m_url;
  o.admin_user = m_admin_user;
  o.admin_token =
    crypto::SecretBytes::copy_of(
      { reinterpret_cast<const unsigned char*>(m_admin_token.data()), m_admin_token.size() })
      .value();
  o.allow_http = true;
  o.retry.attempts = 1;
  o.timeout = std::chrono::seconds(60);
  auto c = net::Client::create(m_ioc.get_executor(), std::move(o));
  if (!c) {
    stop();
    throw std::runtime_error(c.error().message);
  }
  m_client = std::move(*c);
}

void
EmulatorProcess::stop()
{
  m_client.reset();
  if (m_pid > 0) {
    kill(m_pid, SIGTERM);
    int status = 0;
    while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
  }
}

void
EmulatorProcess::restart()
{
  stop();
  start();
}

net::Result<jenkins::MintAnswer>
EmulatorProcess::mint(jenkins::Variant variant, const std::vector<jenkins::MintItem>& items)
{
  return run(jenkins::mint(*m_client, variant, items));
}

net::Result<jenkins::ListAnswer>
EmulatorProcess::list(const std::vector<std::string>& users)
{
  return run(jenkins::list(*m_client, users));
}

net::Result<jenkins::RevokeAnswer>
EmulatorProcess::revoke(jenkins::Variant variant, const std::vector<jenkins::RevokeItem>& items)
{
  return run(jenkins::revoke(*m_client, variant, items));
}

net::Result<void>
EmulatorProcess::verify(const std::string& user, const crypto::SecretBytes& token)
{
  return run(jenkins::verify(*m_client, user, token));
}

nlohmann::json
EmulatorProcess::control(const std::string& method, const std::string& path,
                         const nlohmann::json& body)
{
  net::Request r;
  r.method = method == "GET" ? net::Method::get : net::Method::post;
  if (method == "DELETE") {
    throw std::runtime_error("net::Client sends GET and POST only");
  }
  r.target = "__emu/" + path;
  if (!body.is_null()) {
    r.content_type = "application/json";
    r.body = body.dump();
  }
  auto answer = run(m_client->request(std::move(r)));
  if (!answer) {
    throw std::runtime_error(fmt::format("{} /__emu/{}: {}", method, path, answer.error().message));
  }
  return nlohmann::json::parse(answer->text());
}

void
EmulatorProcess::create_user(const std::string& name, bool realm)
{
  control("POST", "users",
          { { "name", name }, { "realm", realm }, { "admin", false }, { "password", name } });
}

std::size_t
EmulatorProcess::check_only_known_scripts()
{
  const auto known = known_script_hashes();
  const auto log = scripts();
  REQUIRE(log.is_array());
  for (const auto& s : log) {
    INFO("script ", s.dump());
    CHECK(known.count(s.at("template_sha256").get<std::string>()) == 1);
    CHECK(s.at("payloads").get<int>() == 1);
  }
  return log.size();
}

} // namespace test_emu
