package jenkins.security.apitoken;

import emu.core.Emu;
import hudson.util.Secret;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.LocalDate;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import net.sf.json.JSONObject;

/**
 * Stub of jenkins.security.apitoken.ApiTokenStore (reference §3.3, §3.4). Changes live in
 * memory only; they reach disk when the owning user is saved. The file is preprocessed per
 * Jenkins version tier (//#if lines) so absent overloads are really absent.
 */
public class ApiTokenStore {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String HASH_VERSION = "11";
    private static final String LEGACY_VERSION = "10";
    private static final int TOKEN_LENGTH_V2 = 34;

    private List<HashedToken> tokenList = new ArrayList<>();
    /** Owner id, for the event log only. */
    private transient String emuOwner = "?";

    public ApiTokenStore() {}

    public void emuSetOwner(String owner) { this.emuOwner = owner; }

    public synchronized Collection<HashedToken> getTokenListSortedByName() {
        List<HashedToken> r = new ArrayList<>(tokenList);
        r.sort((a, b) -> a.getName().toLowerCase(Locale.ROOT).compareTo(b.getName().toLowerCase(Locale.ROOT)));
        return r;
    }

    public synchronized TokenUuidAndPlainValue generateNewToken(String name) {
//#if V>=2.548
        return generateNewToken(name, null);
    }

    public synchronized TokenUuidAndPlainValue generateNewToken(String name, LocalDate expirationDate) {
//#endif
        byte[] random = new byte[16];
        RANDOM.nextBytes(random);
        String secret = Emu.hex(random);
        String plain = HASH_VERSION + secret;
        HashValue value = new HashValue(HASH_VERSION, Emu.sha256Hex(secret));
        Emu.recordPlainToken(plain);
//#if V>=2.548
        HashedToken t = HashedToken.buildNew(name, value, expirationDate);
//#else
        HashedToken t = HashedToken.buildNew(name, value);
//#endif
        tokenList.add(t);
        Emu.event("token_created", emuOwner, t.getUuid(), name);
//#if V>=2.548
        return new TokenUuidAndPlainValue(t.getUuid(), plain, expirationDate, t.isAboutToExpire());
//#else
        return new TokenUuidAndPlainValue(t.getUuid(), plain);
//#endif
    }

//#if V>=2.548
    public synchronized String addFixedNewToken(String name, String tokenPlainValue, LocalDate expirationDate) {
//#else
    public synchronized String addFixedNewToken(String name, String tokenPlainValue) {
//#endif
        if (tokenPlainValue.length() != TOKEN_LENGTH_V2) {
            throw new IllegalArgumentException("The token must consist of 2 characters for the version and 32 hex-characters for the secret");
        }
        String version = tokenPlainValue.substring(0, 2);
        if (!HASH_VERSION.equals(version)) {
            throw new IllegalArgumentException("The current version of token is " + HASH_VERSION + ", not " + version);
        }
        String secret = tokenPlainValue.substring(2).toLowerCase(Locale.ROOT);
        if (!secret.matches("[0-9a-f]{32}")) {
            throw new IllegalArgumentException("The secret part of the token must consist of 32 hex-characters");
        }
        HashValue value = new HashValue(HASH_VERSION, Emu.sha256Hex(secret));
//#if V>=2.548
        HashedToken t = HashedToken.buildNew(name, value, expirationDate);
//#else
        HashedToken t = HashedToken.buildNew(name, value);
//#endif
        tokenList.add(t);
        Emu.event("token_created", emuOwner, t.getUuid(), name);
        return t.getUuid();
    }

    /** The non-expired token matching {@code token}, compared in constant time, or null. */
    public synchronized HashedToken findMatchingToken(String token) {
        String plain;
        String version;
        if (token.length() == TOKEN_LENGTH_V2) {
            // The two version characters are dropped without being checked, as Jenkins does.
            plain = token.substring(2);
            version = HASH_VERSION;
        } else {
            plain = token;
            version = LEGACY_VERSION;
        }
        byte[] hash = Emu.sha256(plain.getBytes(StandardCharsets.US_ASCII));
        HashedToken found = null;
        for (HashedToken t : tokenList) {
            if (!t.value.version.equals(version)) { continue; }
            if (t.match(hash) && found == null) { found = t; }
        }
        return found;
    }

    public synchronized HashedToken revokeToken(String tokenUuid) {
        for (HashedToken t : tokenList) {
            if (t.getUuid().equals(tokenUuid)) {
                tokenList.remove(t);
                Emu.event("token_revoked", emuOwner, t.getUuid(), t.getName());
                return t;
            }
        }
        return null;
    }

    public synchronized void revokeAllTokens() {
        for (HashedToken t : tokenList) { Emu.event("token_revoked", emuOwner, t.getUuid(), t.getName()); }
        tokenList.clear();
    }

    public synchronized void revokeAllTokensExcept(String tokenUuid) {
        List<HashedToken> keep = new ArrayList<>();
        for (HashedToken t : tokenList) {
            if (t.getUuid().equals(tokenUuid)) {
                keep.add(t);
            } else {
                Emu.event("token_revoked", emuOwner, t.getUuid(), t.getName());
            }
        }
        tokenList = keep;
    }

    public synchronized boolean renameToken(String tokenUuid, String newName) {
        for (HashedToken t : tokenList) {
            if (t.getUuid().equals(tokenUuid)) {
                t.rename(newName);
                return true;
            }
        }
        return false;
    }

    public synchronized HashedToken getLegacyToken() {
        for (HashedToken t : tokenList) {
            if (t.isLegacy()) { return t; }
        }
        return null;
    }

    public synchronized void reconfigure(Map<String, JSONObject> tokenStoreDataMap) {
        for (HashedToken t : tokenList) {
            JSONObject o = tokenStoreDataMap.get(t.getUuid());
            if (o != null && o.get("tokenName") != null) {
                String n = o.getString("tokenName");
                if (!n.trim().isEmpty()) { t.rename(n); }
            }
        }
    }

    public synchronized void regenerateTokenFromLegacy(Secret apiToken) {
        tokenList.removeIf(HashedToken::isLegacy);
        String plain = apiToken.getPlainText();
        tokenList.add(HashedToken.buildNewFromLegacy(new HashValue(LEGACY_VERSION, Emu.sha256Hex(plain)), true));
    }

    public synchronized void regenerateTokenFromLegacyIfRequired(Secret apiToken) {
        if (getLegacyToken() == null) { regenerateTokenFromLegacy(apiToken); }
    }

    // ---- emulator persistence (User.save() / the User constructor call these)
    public synchronized List<Map<String, Object>> emuDump() {
        List<Map<String, Object>> r = new ArrayList<>();
        for (HashedToken t : tokenList) {
            Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("uuid", t.uuid);
            m.put("name", t.name);
            m.put("creationDate", t.creationDate == null ? null : t.creationDate.getTime());
            m.put("expirationDate", t.emuExpiration == null ? null : t.emuExpiration.toString());
            m.put("version", t.value.version);
            m.put("hash", t.value.hash);
            r.add(m);
        }
        return r;
    }

    public synchronized void emuLoad(List<Map<String, Object>> saved) {
        tokenList.clear();
        for (Map<String, Object> m : saved) {
            HashedToken t = new HashedToken();
            t.uuid = (String) m.get("uuid");
            t.name = (String) m.get("name");
            Object c = m.get("creationDate");
            t.creationDate = c == null ? null : new Date(((Number) c).longValue());
            Object e = m.get("expirationDate");
            t.emuExpiration = e == null ? null : LocalDate.parse((String) e);
            t.value = new HashValue((String) m.get("version"), (String) m.get("hash"));
            tokenList.add(t);
        }
    }

    public static class HashValue implements Serializable {
        private final String version;
        private final String hash;

        public HashValue(String version, String hash) {
            this.version = version;
            this.hash = hash;
        }
    }

    public static class HashedToken implements Serializable {
        private String uuid;
        private String name;
        private Date creationDate;
        private HashValue value;
        /** Jenkins' field is expirationDate (since 2.548); kept under another name so that
         *  older tiers do not expose it to scripts through Groovy property access. */
        private LocalDate emuExpiration;

        public HashedToken() {}

        public static HashedToken buildNew(String name, HashValue value) {
            HashedToken t = new HashedToken();
            t.uuid = UUID.randomUUID().toString();
            t.name = name;
            t.value = value;
            t.creationDate = Date.from(Emu.now());
            return t;
        }

//#if V>=2.548
        public static HashedToken buildNew(String name, HashValue value, LocalDate expirationDate) {
            HashedToken t = buildNew(name, value);
            t.emuExpiration = expirationDate;
            return t;
        }
//#endif

        public static HashedToken buildNewFromLegacy(HashValue value, boolean migrating) {
            HashedToken t = new HashedToken();
            t.uuid = UUID.randomUUID().toString();
            t.name = "Legacy Token";
            t.value = value;
            t.creationDate = migrating ? null : Date.from(Emu.now());
            return t;
        }

        public String getUuid() { return uuid; }
        public String getName() { return name; }
        public void setName(String name) { this.name = name; }
        public void rename(String newName) { this.name = newName; }
        public Date getCreationDate() { return creationDate; }

        public long getNumDaysCreation() {
            return creationDate == null ? 0 : ChronoUnit.DAYS.between(creationDate.toInstant(), Emu.now());
        }

        public boolean isLegacy() { return LEGACY_VERSION.equals(value.version); }

        /** Constant-time comparison of a SHA-256 hash with the stored one; false once expired. */
        public boolean match(byte[] hashedBytes) {
            byte[] stored = hexToBytes(value.hash);
            return MessageDigest.isEqual(stored, hashedBytes) && !emuIsExpired();
        }

        private boolean emuIsExpired() {
//#if V>=2.548
            return isExpired();
//#else
            return false;
//#endif
        }

//#if V>=2.548
        public LocalDate getExpirationDate() { return emuExpiration; }

        /** Expired once the expiration day is over in the JVM's zone (valid through that day). */
        public boolean isExpired() { return emuExpiration != null && emuExpiration.isBefore(Emu.today()); }

        public boolean isAboutToExpire() {
            return emuExpiration != null && emuExpiration.isBefore(Emu.today().plusDays(7));
        }
//#endif

        /** Emulator-only view of the expiration, null below 2.548. */
        public LocalDate emuExpiration() { return emuExpiration; }

        private static byte[] hexToBytes(String hex) {
            byte[] b = new byte[hex.length() / 2];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
            }
            return b;
        }
    }
//#if V<2.260

    /** Before 2.260 the result type was nested in the store. */
    public static class TokenUuidAndPlainValue {
        public final String tokenUuid;
        public final String plainValue;

        public TokenUuidAndPlainValue(String tokenUuid, String plainValue) {
            this.tokenUuid = tokenUuid;
            this.plainValue = plainValue;
        }
    }
//#endif
}
