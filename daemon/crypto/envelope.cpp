#include "crypto/envelope.hpp"

#include "crypto/base64.hpp"
#include "crypto/sealed_box.hpp"
#include "util/quote.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>

namespace crypto {

namespace {

using Json = nlohmann::json;

bool
digits(std::string_view s, std::size_t pos, std::size_t n, int max_value, int min_value = 0)
{
  if (pos + n > s.size()) {
    return false;
  }
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v >= min_value && v <= max_value;
}

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), the RFC 3339 profile we write.
bool
is_rfc3339(std::string_view s)
{
  if (s.size() < 20 || !digits(s, 0, 4, 9999) || s[4] != '-' || !digits(s, 5, 2, 12, 1) ||
      s[7] != '-' || !digits(s, 8, 2, 31, 1) || s[10] != 'T' || !digits(s, 11, 2, 23) ||
      s[13] != ':' || !digits(s, 14, 2, 59) || s[16] != ':' || !digits(s, 17, 2, 60)) {
    return false;
  }
  std::size_t pos = 19;
  if (s[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ++pos;
    }
    if (pos == start) {
      return false;
    }
  }
  const std::string_view zone = s.substr(pos);
  if (zone == "Z") {
    return true;
  }
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone, 1, 2, 23) &&
         zone[3] == ':' && digits(zone, 4, 2, 59);
}

bool
is_key_id(std::string_view s)
{
  if (s.size() != 8) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool
is_utf8(const std::string& s)
{
  try {
    (void)Json(s).dump();
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

// Field-by-field reader that names the JSON path in each error.
class Reader
{
public:
  // echo = false: messages name the field but never show a value (the state store's
  // check: whatever an envelope holds stays out of logs).
  Reader(std::string_view where, bool echo)
    : m_where(where)
    , m_echo(echo)
  {
  }

  // ` "value"` quoted and escaped (util::quote), or nothing when values are not echoed.
  [[nodiscard]] std::string found(std::string_view value) const
  {
    return m_echo ? fmt::format(", found {}", util::quote(value)) : std::string();
  }

  util::Error error(std::string_view path, std::string_view what,
                    const char* kind = "envelope") const
  {
    return util::make_error(kind, fmt::format("{}: {}: {}", m_where, path, what));
  }

  // Rejects keys outside `known`: a v1 reader must not silently drop what a writer meant.
  util::Result<void> only_known(const Json& object, std::string_view path,
                                std::span<const std::string_view> known) const
  {
    for (const auto& [key, value] : object.items()) {
      bool found = false;
      for (const auto k : known) {
        found = found || key == k;
      }
      if (!found) {
        return error(path.empty() ? std::string_view("envelope") : path,
                     m_echo ? fmt::format("unknown field {}", util::quote(key))
                            : std::string("unknown field"));
      }
    }
    return {};
  }

  util::Result<const Json*> field(const Json& object, const std::string& path,
                                  std::string_view key) const
  {
    const auto it = object.find(key);
    if (it == object.end()) {
      return error(path, "missing");
    }
    return &*it;
  }

  util::Result<std::string> string(const Json& object, const std::string& path,
                                   std::string_view key) const
  {
    auto v = field(object, path, key);
    if (!v) {
      return v.error();
    }
    if (!(*v)->is_string()) {
      return error(path, fmt::format("expected a string, found {}", (*v)->type_name()));
    }
    auto s = (*v)->get<std::string>();
    if (s.empty()) {
      return error(path, "expected a non-empty string, found \"\"");
    }
    return s;
  }

  util::Result<std::string> timestamp(const Json& object, const std::string& path,
                                      std::string_view key) const
  {
    auto s = string(object, path, key);
    if (s && !is_rfc3339(*s)) {
      return error(path, fmt::format("expected an RFC 3339 timestamp such as "
                                     "2026-11-27T03:00:12Z{}",
                                     found(*s)));
    }
    return s;
  }

private:
  std::string_view m_where;
  bool m_echo;
};

constexpr std::array<std::string_view, 11> k_fields = { "format",  "controller", "url",
                                                        "user",    "token_name", "token_uuid",
                                                        "created", "expires",    "jenkins_expires",
                                                        "sealed",  "signature" };
constexpr std::array<std::string_view, 3> k_signature_fields = { "alg", "key_id", "sig" };
constexpr std::array<std::string_view, 4> k_entry_fields = { "recipient", "key_id", "alg",
                                                             "ciphertext" };

util::Result<SealedEntry>
parse_entry(const Reader& r, const Json& j, const std::string& path)
{
  if (!j.is_object()) {
    return r.error(path, fmt::format("expected an object, found {}", j.type_name()));
  }
  if (auto ok = r.only_known(j, path, k_entry_fields); !ok) {
    return ok.error();
  }
  SealedEntry e;
  auto alg = r.string(j, path + ".alg", "alg");
  if (!alg) {
    return alg.error();
  }
  if (*alg != Envelope::k_alg) {
    return r.error(
      path + ".alg",
      fmt::format("unsupported algorithm: expected \"{}\"{}", Envelope::k_alg, r.found(*alg)),
      "alg");
  }
  auto recipient = r.string(j, path + ".recipient", "recipient");
  if (!recipient) {
    return recipient.error();
  }
  e.recipient = std::move(*recipient);
  auto key_id = r.string(j, path + ".key_id", "key_id");
  if (!key_id) {
    return key_id.error();
  }
  if (!is_key_id(*key_id)) {
    return r.error(path + ".key_id",
                   fmt::format("expected 8 lowercase hex digits{}", r.found(*key_id)));
  }
  e.key_id = std::move(*key_id);
  auto ciphertext = r.string(j, path + ".ciphertext", "ciphertext");
  if (!ciphertext) {
    return ciphertext.error();
  }
  auto bytes = from_base64(*ciphertext);
  if (!bytes) {
    return r.error(path + ".ciphertext", bytes.error().message);
  }
  e.ciphertext = std::move(*bytes);
  return e;
}

util::Result<EnvelopeSignature>
parse_signature(const Reader& r, const Json& j)
{
  const std::string path = "signature";
  if (!j.is_object()) {
    return r.error(path, fmt::format("expected an object, found {}", j.type_name()));
  }
  if (auto ok = r.only_known(j, path, k_signature_fields); !ok) {
    return ok.error();
  }
  auto alg = r.string(j, path + ".alg", "alg");
  if (!alg) {
    return alg.error();
  }
  if (*alg != Envelope::k_signature_alg) {
    return r.error(path + ".alg",
                   fmt::format("unsupported algorithm: expected \"{}\"{}",
                               Envelope::k_signature_alg, r.found(*alg)),
                   "alg");
  }
  EnvelopeSignature out;
  auto key_id = r.string(j, path + ".key_id", "key_id");
  if (!key_id) {
    return key_id.error();
  }
  if (!is_key_id(*key_id)) {
    return r.error(path + ".key_id",
                   fmt::format("expected 8 lowercase hex digits{}", r.found(*key_id)));
  }
  out.key_id = std::move(*key_id);
  auto sig = r.string(j, path + ".sig", "sig");
  if (!sig) {
    return sig.error();
  }
  auto bytes = from_base64(*sig);
  if (!bytes || bytes->size() != SigningKey::k_signature_bytes) {
    return r.error(path + ".sig", "expected standard base64 of a 64-byte Ed25519 signature");
  }
  out.sig = std::move(*bytes);
  return out;
}

void
append_length(std::vector<unsigned char>& out, std::uint64_t n)
{
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<unsigned char>((n >> shift) & 0xff));
  }
}

// resize + memcpy: g++ 12 warns (stringop-overflow, a false positive) on vector::insert here.
void
append_bytes(std::vector<unsigned char>& out, std::span<const unsigned char> bytes)
{
  if (bytes.empty()) {
    return;
  }
  const auto at = out.size();
  out.resize(at + bytes.size());
  std::memcpy(out.data() + at, bytes.data(), bytes.size());
}

void
append_field(std::vector<unsigned char>& out, std::span<const unsigned char> bytes)
{
  append_length(out, bytes.size());
  append_bytes(out, bytes);
}

void
append_field(std::vector<unsigned char>& out, std::string_view text)
{
  append_field(out, { reinterpret_cast<const unsigned char*>(text.data()), text.size() });
}

} // namespace

util::Result<Envelope>
Envelope::seal(const Envelope& info, const SecretBytes& token,
               const std::vector<Recipient>& recipients)
{
  if (recipients.empty()) {
    return util::make_error("envelope", "cannot seal a token for no recipients");
  }
  const std::pair<const char*, const std::string*> texts[] = {
    { "controller", &info.controller },
    { "url", &info.url },
    { "user", &info.user },
    { "token_name", &info.token_name },
    { "token_uuid", &info.token_uuid },
    { "created", &info.created },
    { "expires", &info.expires },
  };
  for (const auto& [name, value] : texts) {
    if (value->empty() || !is_utf8(*value)) {
      return util::make_error(
        "envelope", fmt::format("envelope field {}: expected non-empty UTF-8 text", name));
    }
  }
  for (const auto* ts : { &info.created, &info.expires }) {
    if (!is_rfc3339(*ts)) {
      return util::make_error(
        "envelope",
        fmt::format("envelope: expected an RFC 3339 timestamp, found {}", util::quote(*ts)));
    }
  }
  if (info.jenkins_expires && !is_rfc3339(*info.jenkins_expires)) {
    return util::make_error(
      "envelope", fmt::format("envelope: jenkins_expires: expected an RFC 3339 timestamp, found {}",
                              util::quote(*info.jenkins_expires)));
  }
  Envelope out = info;
  out.sealed.clear();
  out.signature.reset();
  for (const auto& r : recipients) {
    if (r.name.empty() || !is_utf8(r.name)) {
      return util::make_error("envelope", "recipient name: expected non-empty UTF-8 text");
    }
    auto ciphertext = crypto::seal(r.key, token.view());
    if (!ciphertext) {
      return util::make_error(ciphertext.error().kind,
                              fmt::format("recipient {}: {}", r.name, ciphertext.error().message));
    }
    out.sealed.push_back(SealedEntry{ r.name, r.key.key_id(), std::move(*ciphertext) });
  }
  return out;
}

std::string
Envelope::to_json() const
{
  // ordered_json keeps insertion order: DESIGN §6 fixes the order of the fields.
  nlohmann::ordered_json j;
  j["format"] = k_format;
  j["controller"] = controller;
  j["url"] = url;
  j["user"] = user;
  j["token_name"] = token_name;
  j["token_uuid"] = token_uuid;
  j["created"] = created;
  j["expires"] = expires;
  j["jenkins_expires"] = jenkins_expires ? nlohmann::ordered_json(*jenkins_expires) : nullptr;
  auto entries = nlohmann::ordered_json::array();
  for (const auto& e : sealed) {
    nlohmann::ordered_json entry;
    entry["recipient"] = e.recipient;
    entry["key_id"] = e.key_id;
    entry["alg"] = k_alg;
    entry["ciphertext"] = to_base64(e.ciphertext);
    entries.push_back(std::move(entry));
  }
  j["sealed"] = std::move(entries);
  if (signature) {
    nlohmann::ordered_json sig;
    sig["alg"] = k_signature_alg;
    sig["key_id"] = signature->key_id;
    sig["sig"] = to_base64(signature->sig);
    j["signature"] = std::move(sig);
  }
  // seal() and parse() only admit UTF-8; replace keeps a hand-built envelope from throwing.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

util::Result<Envelope>
parse_envelope(std::string_view json, std::string_view where, bool echo)
{
  Json j;
  // nlohmann keeps the last of two equal keys; another reader may keep the first, so an
  // envelope with a duplicate field could mean different things to different consumers.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  const Json::parser_callback_t track = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty() && !duplicate &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    j = Json::parse(json, track);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range (406) for a number that overflows a double.
    std::string detail = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: …" → drop the tag.
    if (const auto close = detail.find("] ");
        detail.starts_with("[json.") && close != detail.npos) {
      detail = detail.substr(close + 2);
    }
    // The detail may quote the input ("last read: '…'").
    return util::make_error(
      "json", echo ? fmt::format("{}: malformed JSON: {}", where, util::escape(detail, 300))
                   : fmt::format("{}: malformed JSON", where));
  }
  if (duplicate) {
    return util::make_error(
      "envelope", fmt::format("{}: duplicate field {}: each field may appear once", where,
                              echo ? util::quote(*duplicate) : std::string("(not shown)")));
  }
  const Reader r(where, echo);
  if (!j.is_object()) {
    return r.error("envelope", fmt::format("expected a JSON object, found {}", j.type_name()));
  }
  // The format first: another version may have other fields, and "unknown format" is the
  // useful answer then.
  auto format = r.string(j, "format", "format");
  if (!format) {
    return format.error();
  }
  if (*format != Envelope::k_format) {
    return util::make_error("format", fmt::format("{}: unknown format{}: this version reads \"{}\"",
                                                  where, echo ? " " + util::quote(*format) : "",
                                                  Envelope::k_format));
  }
  if (auto ok = r.only_known(j, "", k_fields); !ok) {
    return ok.error();
  }
  Envelope env;
  const std::pair<const char*, std::string*> texts[] = {
    { "controller", &env.controller },
    { "url", &env.url },
    { "user", &env.user },
    { "token_name", &env.token_name },
    { "token_uuid", &env.token_uuid },
  };
  for (const auto& [name, out] : texts) {
    auto s = r.string(j, name, name);
    if (!s) {
      return s.error();
    }
    *out = std::move(*s);
  }
  for (const auto& [name, out] :
       { std::pair{ "created", &env.created }, std::pair{ "expires", &env.expires } }) {
    auto s = r.timestamp(j, name, name);
    if (!s) {
      return s.error();
    }
    *out = std::move(*s);
  }
  auto jenkins_expires = r.field(j, "jenkins_expires", "jenkins_expires");
  if (!jenkins_expires) {
    return jenkins_expires.error();
  }
  if (!(*jenkins_expires)->is_null()) {
    auto s = r.timestamp(j, "jenkins_expires", "jenkins_expires");
    if (!s) {
      return util::make_error(
        "envelope", (*jenkins_expires)->is_string()
                      ? s.error().message
                      : fmt::format("{}: jenkins_expires: expected a string or null, found {}",
                                    where, (*jenkins_expires)->type_name()));
    }
    env.jenkins_expires = std::move(*s);
  }
  auto sealed = r.field(j, "sealed", "sealed");
  if (!sealed) {
    return sealed.error();
  }
  if (!(*sealed)->is_array()) {
    return r.error("sealed", fmt::format("expected an array, found {}", (*sealed)->type_name()));
  }
  if ((*sealed)->empty()) {
    return r.error("sealed", "expected at least one sealed entry, found an empty list");
  }
  for (std::size_t i = 0; i < (*sealed)->size(); ++i) {
    auto e = parse_entry(r, (**sealed)[i], fmt::format("sealed[{}]", i));
    if (!e) {
      return e.error();
    }
    env.sealed.push_back(std::move(*e));
  }
  if (const auto sig = j.find("signature"); sig != j.end()) {
    auto parsed = parse_signature(r, *sig);
    if (!parsed) {
      return parsed.error();
    }
    env.signature = std::move(*parsed);
  }
  return env;
}

} // namespace

util::Result<Envelope>
Envelope::parse(std::string_view json, std::string_view where)
{
  return parse_envelope(json, where, true);
}

util::Result<void>
check_envelope(std::string_view json, std::string_view token_uuid, std::string_view token_name)
{
  auto env = parse_envelope(json, "envelope", false);
  if (!env) {
    return util::make_error("envelope", env.error().message);
  }
  if (env->token_uuid != token_uuid || env->token_name != token_name) {
    return util::make_error("envelope",
                            "envelope: token_uuid or token_name does not match the attempt");
  }
  return {};
}

std::vector<unsigned char>
Envelope::signed_bytes() const
{
  std::vector<unsigned char> out;
  append_bytes(out, { reinterpret_cast<const unsigned char*>(k_signature_domain.data()),
                      k_signature_domain.size() });
  out.push_back(0);
  for (const std::string_view text :
       { k_format, std::string_view(controller), std::string_view(url), std::string_view(user),
         std::string_view(token_name), std::string_view(token_uuid), std::string_view(created),
         std::string_view(expires) }) {
    append_field(out, text);
  }
  if (jenkins_expires) {
    out.push_back(1);
    append_field(out, *jenkins_expires);
  } else {
    out.push_back(0);
  }
  append_length(out, sealed.size());
  for (const auto& e : sealed) {
    append_field(out, e.recipient);
    append_field(out, e.key_id);
    append_field(out, k_alg);
    append_field(out, e.ciphertext);
  }
  append_field(out, k_signature_alg);
  append_field(out, signature ? std::string_view(signature->key_id) : std::string_view());
  return out;
}

void
Envelope::sign(const SigningKey& key)
{
  signature = EnvelopeSignature{ key.verify_key().key_id(), {} };
  const auto sig = key.sign(signed_bytes());
  signature->sig.assign(sig.begin(), sig.end());
}

util::Result<void>
Envelope::verify(const VerifyKey& key, std::string_view where) const
{
  if (!signature) {
    return util::make_error(
      "unsigned", fmt::format("{}: the envelope is not signed; --verify-key accepts only an "
                              "envelope signed by that key",
                              where));
  }
  if (signature->key_id != key.key_id()) {
    return util::make_error(
      "signature", fmt::format("{}: signed by key_id {}, not by the verify key (key_id {})", where,
                               signature->key_id, key.key_id()));
  }
  if (!key.verify(signed_bytes(), signature->sig)) {
    return util::make_error("signature",
                            fmt::format("{}: the signature does not verify: the envelope was "
                                        "changed after it was signed",
                                        where));
  }
  return {};
}

util::Result<SecretBytes>
Envelope::open(const PrivateKey& key, std::string_view where) const
{
  const auto id = key.public_key().key_id();
  std::optional<util::Error> open_error;
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    const auto& e = sealed[i];
    if (e.key_id != id) {
      continue;
    }
    auto plain = open_sealed(key, e.ciphertext);
    if (plain) {
      return plain;
    }
    // Keep looking: a second entry with the same key_id (a clash of 32 bits) may open.
    if (!open_error) {
      open_error =
        util::make_error("open", fmt::format("{}: sealed[{}] (recipient {}, key_id {}): {}", where,
                                             i, e.recipient, e.key_id, plain.error().message));
    }
  }
  if (open_error) {
    return *open_error;
  }
  std::string present;
  for (const auto& e : sealed) {
    present += fmt::format("{}{} ({})", present.empty() ? "" : ", ",
                           util::escape(e.recipient, util::k_max_echo_bytes), e.key_id);
  }
  return util::make_error("no_key", fmt::format("{}: no sealed entry for this key (key_id {}); the "
                                                "envelope is sealed for: {}",
                                                where, id, present));
}

} // namespace crypto
