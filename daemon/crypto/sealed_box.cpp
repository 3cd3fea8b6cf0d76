#include "crypto/sealed_box.hpp"

#include "crypto/sodium.hpp"

#include <fmt/core.h>
#include <sodium.h>

namespace crypto {

util::Result<std::vector<unsigned char>>
seal(const PublicKey& recipient, std::span<const unsigned char> plain)
{
  if (auto ok = init_sodium(); !ok) {
    return ok.error();
  }
  std::vector<unsigned char> out(plain.size() + crypto_box_SEALBYTES);
  if (crypto_box_seal(out.data(), plain.data(), plain.size(), recipient.bytes().data()) != 0) {
    return util::make_error(
      "crypto", fmt::format("cannot seal for key_id {}: libsodium rejects the public key",
                            recipient.key_id()));
  }
  return out;
}

util::Result<SecretBytes>
open_sealed(const PrivateKey& key, std::span<const unsigned char> ciphertext)
{
  if (ciphertext.size() < crypto_box_SEALBYTES) {
    return util::make_error("open", fmt::format("ciphertext of {} bytes is shorter than the {} "
                                                "bytes of sealed-box overhead",
                                                ciphertext.size(), crypto_box_SEALBYTES));
  }
  auto plain = SecretBytes::allocate(ciphertext.size() - crypto_box_SEALBYTES);
  if (!plain) {
    return plain.error();
  }
  if (crypto_box_seal_open(plain->data(), ciphertext.data(), ciphertext.size(),
                           key.public_key().bytes().data(), key.view().data()) != 0) {
    return util::make_error("open", "ciphertext does not open with this key: it was altered "
                                    "(tampered or corrupt) or sealed for another key");
  }
  return plain;
}

} // namespace crypto
