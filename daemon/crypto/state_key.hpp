#pragma once

#include "crypto/private_key.hpp"
#include "crypto/secret_bytes.hpp"
#include "util/error.hpp"

#include <string>
#include <string_view>

// The daemon's own X25519 key (`state_key`, DESIGN §5, §7a): what `auth: self` keeps in the
// state (each slot's current token, and a token value chosen before its mint) is sealed to
// it, never stored in clear. See docs/self-rotation.md for the threat model.
namespace crypto {

// Where the key lives: `configured` (the config's state_key) when set; else
// $CREDENTIALS_DIRECTORY/state_key when that file exists (systemd LoadCredential[Encrypted]=);
// else state_dir/state_key, made on first use. `create` says whether a missing file may be made.
struct StateKeyPath
{
  std::string path;
  bool create = false;
};
StateKeyPath state_key_path(const std::string& configured, const std::string& state_dir);

// A Jenkins token value of the current format, made by us: "11" + 32 lowercase hex of 16
// random bytes (reference §3.4), as addFixedToken takes it. Errors: libsodium unusable.
util::Result<SecretBytes> make_token_value();

class StateKey
{
public:
  // Reads the key file (0600 or stricter, one line of base64, as `keygen` writes); when it
  // does not exist and `where.create`, makes a fresh key there (O_EXCL, 0600, fsynced).
  // Errors name the file, never key material.
  static util::Result<StateKey> load(const StateKeyPath& where);

  // Seals `plain` to the key: standard base64 of a crypto_box_seal box.
  [[nodiscard]] util::Result<std::string> seal(const SecretBytes& plain) const;
  // Opens what seal() made into locked memory. Errors: "open" (altered, or another key).
  [[nodiscard]] util::Result<SecretBytes> open(std::string_view sealed) const;

  [[nodiscard]] const std::string& path() const { return m_path; }

private:
  StateKey(PrivateKey key, std::string path)
    : m_key(std::move(key))
    , m_path(std::move(path))
  {
  }

  PrivateKey m_key;
  std::string m_path;
};

} // namespace crypto
