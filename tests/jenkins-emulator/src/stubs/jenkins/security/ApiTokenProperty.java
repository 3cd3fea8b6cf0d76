package jenkins.security;

import emu.core.Emu;
import hudson.model.User;
import hudson.model.UserProperty;
import hudson.util.Secret;
import java.io.IOException;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.time.format.FormatStyle;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Map;
import jenkins.security.apitoken.ApiTokenPropertyConfiguration;
import jenkins.security.apitoken.ApiTokenStats;
import jenkins.security.apitoken.ApiTokenStore;
//#if V>=2.260
import jenkins.security.apitoken.TokenUuidAndPlainValue;
//#endif

/**
 * Stub of jenkins.security.ApiTokenProperty (reference §3.1). The helpers (2.260+) change the
 * store and then save the user; none of them checks permissions.
 */
public class ApiTokenProperty extends UserProperty {
    private volatile Secret apiToken;
    private ApiTokenStore tokenStore = new ApiTokenStore();
    private transient ApiTokenStats tokenStats;

    public ApiTokenProperty() {}

    @Override
    protected void setUser(User u) {
        super.setUser(u);
        tokenStore.emuSetOwner(u.getId());
        tokenStats = ApiTokenStats.load(u);
    }

    public ApiTokenStore getTokenStore() { return tokenStore; }
    public ApiTokenStats getTokenStats() { return tokenStats; }

    /** True when {@code token} is a valid, unexpired token of this user; records the use. */
    public boolean matchesPassword(String token) {
        if (token == null || token.trim().isEmpty()) { return false; }
        ApiTokenStore.HashedToken t = tokenStore.findMatchingToken(token);
        if (t == null) { return false; }
        tokenStats.updateUsageForId(t.getUuid());
        return true;
    }

    public String getApiToken() {
        String c = Emu.caller();
        if (user != null && c != null && c.equalsIgnoreCase(user.getId())) {
            return apiToken == null ? "" : apiToken.getPlainText();
        }
        return "Token is hidden";
    }

    public boolean hasLegacyToken() { return apiToken != null; }

    @Deprecated
    public void changeApiToken() throws IOException {
        byte[] b = new byte[16];
        new java.security.SecureRandom().nextBytes(b);
        apiToken = Secret.fromString(Emu.hex(b));
        tokenStore.regenerateTokenFromLegacy(apiToken);
        user.save();
    }

//#if V>=2.260
    public TokenUuidAndPlainValue generateNewToken(String name) throws IOException {
//#if V>=2.548
        return generateNewToken(name, null);
    }

    public TokenUuidAndPlainValue generateNewToken(String name, LocalDate expirationDate) throws IOException {
        TokenUuidAndPlainValue r = tokenStore.generateNewToken(name, expirationDate);
//#else
        TokenUuidAndPlainValue r = tokenStore.generateNewToken(name);
//#endif
        user.save();
        return r;
    }

    public String addFixedNewToken(String name, String tokenPlainValue) throws IOException {
//#if V>=2.548
        return addFixedNewToken(name, tokenPlainValue, null);
    }

    public String addFixedNewToken(String name, String tokenPlainValue, LocalDate expirationDate) throws IOException {
        String uuid = tokenStore.addFixedNewToken(name, tokenPlainValue, expirationDate);
//#else
        String uuid = tokenStore.addFixedNewToken(name, tokenPlainValue);
//#endif
        user.save();
        return uuid;
    }

    /** Revokes one token; an unknown uuid is a silent no-op without a save. */
    public void revokeToken(String tokenUuid) throws IOException {
        ApiTokenStore.HashedToken t = tokenStore.revokeToken(tokenUuid);
        if (t != null) {
            if (t.isLegacy()) { apiToken = null; }
            tokenStats.removeId(t.getUuid());
            user.save();
        }
    }

    public void revokeAllTokens() throws IOException {
        tokenStore.revokeAllTokens();
        tokenStats.removeAll();
        user.save();
    }

    public void revokeAllTokensExceptOne(String tokenUuid) throws IOException {
        tokenStore.revokeAllTokensExcept(tokenUuid);
        tokenStats.removeAllExcept(tokenUuid);
        user.save();
    }
//#endif

    /** Tokens sorted by lower-cased name, with their usage statistics. */
    public Collection<TokenInfoAndStats> getTokenList() {
        List<TokenInfoAndStats> r = new ArrayList<>();
        for (ApiTokenStore.HashedToken t : tokenStore.getTokenListSortedByName()) {
            r.add(new TokenInfoAndStats(t, tokenStats.findTokenStatsById(t.getUuid())));
        }
        return r;
    }

    // ---- emulator persistence, called by User
    public void emuSave(Map<String, Object> cfg) {
        cfg.put("tokenStore", tokenStore.emuDump());
        cfg.put("legacyApiToken", apiToken == null ? null : apiToken.getPlainText());
    }

    @SuppressWarnings("unchecked")
    public void emuLoad(Map<String, Object> cfg) {
        Object l = cfg.get("tokenStore");
        if (l != null) { tokenStore.emuLoad((List<Map<String, Object>>) l); }
        Object legacy = cfg.get("legacyApiToken");
        if (legacy != null) {
            apiToken = Secret.fromString((String) legacy);
            tokenStore.regenerateTokenFromLegacyIfRequired(apiToken);
        }
    }

    public static class TokenInfoAndStats {
        public final String uuid;
        public final String name;
        public final Date creationDate;
        public final long numDaysCreation;
        public final boolean isLegacy;
        public final int useCounter;
        public final Date lastUseDate;
        public final long numDaysUse;
//#if V>=2.548
        public final String expirationDate;
        public final boolean expired;
        public final boolean aboutToExpire;
//#endif

        public TokenInfoAndStats(ApiTokenStore.HashedToken token, ApiTokenStats.SingleTokenStats stats) {
            this.uuid = token.getUuid();
            this.name = token.getName();
            this.creationDate = token.getCreationDate();
            this.numDaysCreation = token.getNumDaysCreation();
            this.isLegacy = token.isLegacy();
            this.useCounter = stats.getUseCounter();
            this.lastUseDate = stats.getLastUseDate();
            this.numDaysUse = stats.getNumDaysUse();
//#if V>=2.548
            LocalDate e = token.getExpirationDate();
            this.expirationDate = e == null ? "never" : e.format(DateTimeFormatter.ofLocalizedDate(FormatStyle.SHORT));
            this.expired = token.isExpired();
            this.aboutToExpire = token.isAboutToExpire();
//#endif
        }
    }
}
