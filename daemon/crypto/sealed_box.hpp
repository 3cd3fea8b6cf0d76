#pragma once

#include "crypto/private_key.hpp"
#include "crypto/public_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <span>
#include <vector>

// libsodium sealed boxes (crypto_box_seal): anonymous sender, X25519 + XSalsa20-Poly1305,
// 48 bytes of overhead. PyNaCl calls the same construction SealedBox.
namespace crypto {

// Seals `plain` for `recipient`. Errors: libsodium unusable or refusing (it does only
// for keys it rejects, such as low-order points).
util::Result<std::vector<unsigned char>> seal(const PublicKey& recipient,
                                              std::span<const unsigned char> plain);

// Opens a sealed box into locked memory. Errors: "open" when the ciphertext is too short,
// was altered, or was sealed for another key (the three are indistinguishable by design).
util::Result<SecretBytes> open_sealed(const PrivateKey& key,
                                      std::span<const unsigned char> ciphertext);

} // namespace crypto
