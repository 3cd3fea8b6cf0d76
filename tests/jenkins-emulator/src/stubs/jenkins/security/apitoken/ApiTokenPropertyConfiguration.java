package jenkins.security.apitoken;

import emu.core.Emu;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

/** Stub of the GlobalConfiguration holding the API token switches (reference §3.7). */
public class ApiTokenPropertyConfiguration {
    private static ApiTokenPropertyConfiguration instance;

    private boolean tokenGenerationOnCreationEnabled = false;
    private boolean creationOfLegacyTokenEnabled = false;
    private boolean usageStatisticsEnabled = true;

    public static synchronized ApiTokenPropertyConfiguration get() {
        if (instance == null) {
            instance = new ApiTokenPropertyConfiguration();
            instance.load();
        }
        return instance;
    }

    private File file() { return new File(Emu.dataDir(), "jenkins.security.apitoken.ApiTokenPropertyConfiguration.json"); }

    public synchronized void load() {
        try {
            Map<String, Object> m = Emu.readJson(file());
            if (m == null) { return; }
            tokenGenerationOnCreationEnabled = Boolean.TRUE.equals(m.get("tokenGenerationOnCreationEnabled"));
            creationOfLegacyTokenEnabled = Boolean.TRUE.equals(m.get("creationOfLegacyTokenEnabled"));
            usageStatisticsEnabled = !Boolean.FALSE.equals(m.get("usageStatisticsEnabled"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public synchronized void save() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokenGenerationOnCreationEnabled", tokenGenerationOnCreationEnabled);
        m.put("creationOfLegacyTokenEnabled", creationOfLegacyTokenEnabled);
        m.put("usageStatisticsEnabled", usageStatisticsEnabled);
        try {
            Emu.writeAtomically(file(), Emu.toJson(m));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public boolean hasExistingConfigFile() { return file().isFile(); }
    public boolean isTokenGenerationOnCreationEnabled() { return tokenGenerationOnCreationEnabled; }
    public void setTokenGenerationOnCreationEnabled(boolean v) { tokenGenerationOnCreationEnabled = v; save(); }
    public boolean isCreationOfLegacyTokenEnabled() { return creationOfLegacyTokenEnabled; }
    public void setCreationOfLegacyTokenEnabled(boolean v) { creationOfLegacyTokenEnabled = v; save(); }
    public boolean isUsageStatisticsEnabled() { return usageStatisticsEnabled; }
    public void setUsageStatisticsEnabled(boolean v) { usageStatisticsEnabled = v; save(); }
}
