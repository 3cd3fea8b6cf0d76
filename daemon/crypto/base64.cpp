#include "crypto/base64.hpp"

#include "crypto/sodium.hpp"

#include <sodium.h>

namespace crypto {

namespace {

constexpr int k_variant = sodium_base64_VARIANT_ORIGINAL;

util::Error
bad_base64()
{
  return util::make_error("base64", "expected standard base64 (A-Z a-z 0-9 + / with = padding)");
}

// Decodes into `out` (at least text.size() bytes); returns the decoded length.
util::Result<std::size_t>
decode_into(std::span<const unsigned char> text, unsigned char* out, std::size_t out_size)
{
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  std::size_t len = 0;
  // b64_end = nullptr: anything that is not base64 (whitespace included) is an error
  // instead of a silent stop.
  if (sodium_base642bin(out, out_size, reinterpret_cast<const char*>(text.data()), text.size(),
                        nullptr, &len, nullptr, k_variant) != 0) {
    return bad_base64();
  }
  return len;
}

} // namespace

std::string
to_base64(std::span<const unsigned char> bytes)
{
  std::string out(sodium_base64_encoded_len(bytes.size(), k_variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), k_variant);
  out.resize(out.size() - 1); // the terminating NUL
  return out;
}

std::string
to_base64(std::string_view bytes)
{
  return to_base64({ reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size() });
}

util::Result<std::string>
from_base64_text(std::string_view text)
{
  std::string out(text.size() + 1, '\0');
  auto len = decode_into({ reinterpret_cast<const unsigned char*>(text.data()), text.size() },
                         reinterpret_cast<unsigned char*>(out.data()), out.size());
  if (!len) {
    return len.error();
  }
  out.resize(*len);
  return out;
}

util::Result<std::vector<unsigned char>>
from_base64(std::string_view text)
{
  std::vector<unsigned char> out(text.size() + 1);
  auto len = decode_into({ reinterpret_cast<const unsigned char*>(text.data()), text.size() },
                         out.data(), out.size());
  if (!len) {
    return len.error();
  }
  out.resize(*len);
  return out;
}

util::Result<SecretBytes>
to_base64_secret(std::span<const unsigned char> bytes)
{
  auto out = SecretBytes::allocate(sodium_base64_encoded_len(bytes.size(), k_variant));
  if (!out) {
    return out.error();
  }
  sodium_bin2base64(reinterpret_cast<char*>(out->data()), out->size(), bytes.data(), bytes.size(),
                    k_variant);
  out->resize_down(out->size() - 1);
  return out;
}

util::Result<SecretBytes>
from_base64_secret(std::span<const unsigned char> text)
{
  auto out = SecretBytes::allocate(text.size() + 1);
  if (!out) {
    return out.error();
  }
  auto len = decode_into(text, out->data(), out->size());
  if (!len) {
    return len.error();
  }
  out->resize_down(*len);
  return out;
}

} // namespace crypto
