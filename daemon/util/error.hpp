#pragma once

#include <boost/system/result.hpp>

#include <source_location>
#include <stdexcept>
#include <string>
#include <utility>

namespace util {

// What went wrong, as a value. `kind` is a short stable word that callers switch on
// ("io", "parse", "auth", "timeout"...); `message` is for humans and never holds a secret.
struct Error
{
  Error() = default;
  // Not an aggregate on purpose: result<std::string, Error> must not see Error as
  // constructible from one string.
  Error(std::string error_kind, std::string error_message)
    : kind(std::move(error_kind))
    , message(std::move(error_message))
  {
  }

  std::string kind;
  std::string message;

  [[nodiscard]] std::string to_string() const { return message; }
};

inline Error
make_error(std::string kind, std::string message)
{
  return Error{ std::move(kind), std::move(message) };
}

// The exception `result<T, Error>::value()` throws when it holds an error.
class ErrorException : public std::runtime_error
{
public:
  explicit ErrorException(Error error)
    : std::runtime_error(error.message)
    , m_error(std::move(error))
  {
  }

  [[nodiscard]] const Error& error() const { return m_error; }

private:
  Error m_error;
};

// Found by ADL from boost::system::result<T, Error>::value().
[[noreturn]] inline void
throw_exception_from_error(const Error& e, const boost::source_location&)
{
  throw ErrorException(e);
}

// Expected failures are values (STYLE: Errors).
template<typename T>
using Result = boost::system::result<T, Error>;

// Startup failures: thrown, caught in main and mapped to the process exit code.
class Fatal : public std::runtime_error
{
public:
  Fatal(int exit_code, const std::string& message)
    : std::runtime_error(message)
    , m_exit_code(exit_code)
  {
  }

  [[nodiscard]] int exit_code() const { return m_exit_code; }

private:
  int m_exit_code;
};

// Exit codes of DESIGN §4.
namespace exit_code {
constexpr int k_ok = 0;
constexpr int k_failure = 1;
constexpr int k_usage = 2;
constexpr int k_unavailable = 69;
constexpr int k_config = 78;
} // namespace exit_code

} // namespace util
