#include "crypto/base64.hpp"
#include "jenkins/probe.hpp"
#include "jenkins/script.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <jenkins/embedded_scripts.hpp>
#include <sstream>

namespace {

std::string
marker_of(const nlohmann::json& j)
{
  return std::string(jenkins::k_result_marker) + crypto::to_base64(j.dump());
}

std::string
url_decode(std::string_view form)
{
  std::string out;
  for (std::size_t i = 0; i < form.size(); ++i) {
    if (form[i] == '+') {
      out += ' ';
    } else if (form[i] == '%') {
      out += static_cast<char>(std::stoi(std::string(form.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += form[i];
    }
  }
  return out;
}

} // namespace

TEST_SUITE("jenkins::render_script")
{
  TEST_CASE("every embedded script holds the payload placeholder exactly once")
  {
    REQUIRE(std::size(jenkins::embedded::k_scripts) >= 1);
    for (const auto& s : jenkins::embedded::k_scripts) {
      auto r = jenkins::render_script(s.name, nlohmann::json::object());
      CHECK_MESSAGE(r.has_value(), s.name);
    }
  }

  TEST_CASE("the embedded probe is the file in the source tree")
  {
    const char* root = std::getenv("JTR_SOURCE_DIR");
    REQUIRE(root != nullptr);
    std::ifstream in(std::string(root) + "/daemon/jenkins/scripts/probe.groovy", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str() == jenkins::embedded::k_probe);
  }

  TEST_CASE("only base64 of the input JSON replaces the placeholder")
  {
    const nlohmann::json input = { { "nonce", "x'); System.exit(1); //" } };
    auto r = jenkins::render_script("probe", input);
    REQUIRE(r.has_value());
    const auto& t = jenkins::embedded::k_probe;
    const auto at = t.find(jenkins::k_payload_placeholder);
    const auto inserted =
      r->substr(at, r->size() - (t.size() - jenkins::k_payload_placeholder.size()));
    CHECK(inserted.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
          std::string::npos);
    CHECK(nlohmann::json::parse(crypto::from_base64_text(inserted).value()) == input);
    CHECK(r->find("System.exit") == std::string::npos);
  }

  TEST_CASE("an unknown script name is an error")
  {
    CHECK_FALSE(jenkins::render_script("no-such-script", {}).has_value());
  }

  TEST_CASE("the form body percent-encodes the script")
  {
    const std::string script = "println('a+b = c&d')\n// 100%";
    const auto form = jenkins::script_form(script);
    CHECK(form.starts_with("script="));
    CHECK(form.find_first_of("&'\n ") == std::string::npos);
    CHECK(url_decode(form.substr(7)) == script);
  }
}

TEST_SUITE("jenkins::decode_output")
{
  TEST_CASE("the marker's JSON is returned; other output and Result: lines are ignored")
  {
    const nlohmann::json j = { { "a", 1 }, { "b", "two" } };
    const auto out = "noise before\n" + marker_of(j) + "\r\nResult: {a=1}\n";
    auto r = jenkins::decode_output(out, "ci");
    REQUIRE(r.has_value());
    CHECK(*r == j);
  }

  TEST_CASE("a stack trace without a marker is a script_error with its first lines")
  {
    const std::string trace =
      "groovy.lang.MissingPropertyException: No such property: Jenkinz for class: Script1\n"
      "\tat "
      "org.codehaus.groovy.runtime.ScriptBytecodeAdapter.unwrap(ScriptBytecodeAdapter.java:66)\n"
      "\tat Script1.run(Script1.groovy:3)\n"
      "\tat hudson.util.RemotingDiagnostics$Script.call(RemotingDiagnostics.java:142)\n";
    auto r = jenkins::decode_output(trace, "ci");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::script_error);
    CHECK(r.error().message.find("ci: the script failed: groovy.lang.MissingPropertyException: No "
                                 "such property: Jenkinz") == 0);
    CHECK(r.error().message.find("Script1.run") != std::string::npos);
    CHECK(r.error().message.find("RemotingDiagnostics") == std::string::npos);
  }

  TEST_CASE("the trace starts after the script's own output; compile errors are traces too")
  {
    // As the emulator (Groovy 2.4) prints them.
    const std::string after_output =
      "partial output\n"
      "groovy.lang.MissingPropertyException: No such property: Jenkinz for class: Script1\n"
      "\tat "
      "org.codehaus.groovy.runtime.ScriptBytecodeAdapter.unwrap(ScriptBytecodeAdapter.java:66)\n";
    auto r = jenkins::decode_output(after_output, "ci");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == net::FailureKind::script_error);
    CHECK(r.error().message.find("partial output") == std::string::npos);
    CHECK(r.error().message.find("ci: the script failed: groovy.lang.MissingPropertyException") ==
          0);

    const std::string compile =
      "org.codehaus.groovy.control.MultipleCompilationErrorsException: startup failed:\n"
      "Script1.groovy: 1: unexpected token: ; @ line 1, column 9.\n"
      "   def x = ; \n           ^\n\n1 error\n\n"
      "\tat org.codehaus.groovy.control.ErrorCollector.failIfErrors(ErrorCollector.java:309)\n";
    auto c = jenkins::decode_output(compile, "ci");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().kind == net::FailureKind::script_error);
    CHECK(c.error().message.find("unexpected token: ; @ line 1, column 9.") != std::string::npos);
  }

  TEST_CASE("garbage, two markers, bad base64 or non-JSON are bad_output")
  {
    const std::string garbage("\x01\xfe\xff binary \x07 Exception", 20);
    const nlohmann::json j = { { "a", 1 } };
    for (const auto& out :
         { garbage, std::string("hello\nResult: 3\n"), marker_of(j) + "\n" + marker_of(j),
           std::string(jenkins::k_result_marker) + "not*base64",
           std::string(jenkins::k_result_marker) + crypto::to_base64("[1,2]"), std::string() }) {
      auto r = jenkins::decode_output(out, "ci");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == net::FailureKind::bad_output);
      CHECK(r.error().message.starts_with("ci: "));
    }
  }
}

TEST_SUITE("jenkins::parse_probe")
{
  const nlohmann::json k_answer = {
    { "nonce", "n1" },
    { "version", "2.560" },
    { "now_millis", 1700000000123 },
    { "now", "2023-11-14T22:13:20.123Z" },
    { "zone", "UTC" },
    { "expiring_tokens", true },
    { "helpers", true },
    { "token_store", true },
    { "usage_statistics", nullptr },
    { "administer", true },
  };

  TEST_CASE("a complete answer with the right nonce is read")
  {
    auto r = jenkins::parse_probe(k_answer, "n1", "ci");
    REQUIRE(r.has_value());
    CHECK(r->version == "2.560");
    CHECK(r->now_millis == 1700000000123);
    CHECK(r->expiring_tokens);
    CHECK_FALSE(r->usage_statistics.has_value());
  }

  TEST_CASE("a wrong nonce or a missing field is bad_output")
  {
    CHECK(jenkins::parse_probe(k_answer, "n2", "ci").error().kind == net::FailureKind::bad_output);
    for (const char* key : { "version", "now_millis", "helpers", "administer", "zone" }) {
      auto a = k_answer;
      a.erase(key);
      auto r = jenkins::parse_probe(a, "n1", "ci");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == net::FailureKind::bad_output);
    }
    auto a = k_answer;
    a["usage_statistics"] = "yes";
    CHECK_FALSE(jenkins::parse_probe(a, "n1", "ci").has_value());
  }
}
