package jenkins.security.apitoken;

import emu.core.Emu;
import hudson.model.User;
import java.io.File;
import java.io.IOException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stub of ApiTokenStats: per-user usage counters kept in their own file
 * (users/DIR/apiTokenStats.json), rewritten on each token login so the login never rewrites
 * the user's config.
 */
public class ApiTokenStats {
    private List<SingleTokenStats> tokenStats = new ArrayList<>();
    private transient File parent;

    public static ApiTokenStats load(User user) {
        ApiTokenStats s = new ApiTokenStats();
        s.parent = Emu.userDir(user.getId());
        try {
            Map<String, Object> m = Emu.readJson(new File(s.parent, "apiTokenStats.json"));
            if (m != null) {
                @SuppressWarnings("unchecked")
                List<Map<String, Object>> l = (List<Map<String, Object>>) m.get("tokenStats");
                for (Map<String, Object> e : l) {
                    SingleTokenStats t = new SingleTokenStats((String) e.get("tokenUuid"));
                    t.useCounter = ((Number) e.get("useCounter")).intValue();
                    Object d = e.get("lastUseDate");
                    t.lastUseDate = d == null ? null : new Date(((Number) d).longValue());
                    s.tokenStats.add(t);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return s;
    }

    public synchronized void removeId(String tokenUuid) {
        if (tokenStats.removeIf(t -> t.tokenUuid.equals(tokenUuid))) { save(); }
    }

    public synchronized void removeAll() { tokenStats.clear(); save(); }

    public synchronized void removeAllExcept(String tokenUuid) {
        tokenStats.removeIf(t -> !t.tokenUuid.equals(tokenUuid));
        save();
    }

    public synchronized SingleTokenStats updateUsageForId(String tokenUuid) {
        SingleTokenStats s = internalFind(tokenUuid);
        if (s == null) {
            s = new SingleTokenStats(tokenUuid);
            tokenStats.add(s);
        }
        s.useCounter++;
        s.lastUseDate = Date.from(Emu.now());
        save();
        return s;
    }

    /** The stats of the token, or a fresh empty record (never null). */
    public synchronized SingleTokenStats findTokenStatsById(String tokenUuid) {
        SingleTokenStats s = internalFind(tokenUuid);
        return s != null ? s : new SingleTokenStats(tokenUuid);
    }

    private SingleTokenStats internalFind(String uuid) {
        for (SingleTokenStats s : tokenStats) {
            if (s.tokenUuid.equals(uuid)) { return s; }
        }
        return null;
    }

    /** Writes apiTokenStats.json atomically, unless usage statistics are disabled. */
    public synchronized void save() {
        if (!ApiTokenPropertyConfiguration.get().isUsageStatisticsEnabled() || parent == null) { return; }
        List<Map<String, Object>> l = new ArrayList<>();
        for (SingleTokenStats s : tokenStats) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("tokenUuid", s.tokenUuid);
            m.put("useCounter", s.useCounter);
            m.put("lastUseDate", s.lastUseDate == null ? null : s.lastUseDate.getTime());
            l.add(m);
        }
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("tokenStats", l);
        try {
            Emu.writeAtomically(new File(parent, "apiTokenStats.json"), Emu.toJson(root));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static class SingleTokenStats {
        private final String tokenUuid;
        private Date lastUseDate;
        private Integer useCounter = 0;

        public SingleTokenStats(String tokenUuid) { this.tokenUuid = tokenUuid; }

        public String getTokenUuid() { return tokenUuid; }
        public int getUseCounter() { return useCounter == null ? 0 : useCounter; }
        public Date getLastUseDate() { return lastUseDate; }

        public long getNumDaysUse() {
            return lastUseDate == null ? 0 : ChronoUnit.DAYS.between(lastUseDate.toInstant(), Emu.now());
        }
    }
}
