package jenkins.model;

import emu.core.Emu;
import hudson.model.User;
import hudson.security.HudsonPrivateSecurityRealm;
import hudson.security.Permission;
import hudson.security.SecurityRealm;
import hudson.util.VersionNumber;
import java.io.File;
import java.util.Collection;

/** Stub of jenkins.model.Jenkins: the singleton, its version and user lookups. */
public class Jenkins {
    public static final Permission ADMINISTER = Permission.HUDSON_ADMINISTER;
    public static final Permission READ = Permission.READ;
    /** Set from --version at start, as Jenkins reads it from its manifest. */
    public static String VERSION = "?";

    private static final Jenkins INSTANCE = new Jenkins();

    private Jenkins() {}

    public static Jenkins get() { return INSTANCE; }
    public static Jenkins getInstance() { return INSTANCE; }
    public static Jenkins getInstanceOrNull() { return INSTANCE; }
    public static VersionNumber getVersion() { return new VersionNumber(VERSION); }

    public File getRootDir() { return Emu.dataDir(); }
    public SecurityRealm getSecurityRealm() { return HudsonPrivateSecurityRealm.INSTANCE; }
    public User getUser(String name) { return User.get(name, false); }
    public Collection<User> getUsers() { return User.getAll(); }
    public String getRootUrl() { return null; }
    public boolean isUseSecurity() { return true; }
    public boolean isUseCrumbs() { return true; }

    /** True when the calling user may do {@code p}; admins may do everything. */
    public boolean hasPermission(Permission p) {
        String c = Emu.caller();
        if (c == null) { return false; }
        java.util.Map<String, Object> r = Emu.realm.get(c.toLowerCase(java.util.Locale.ROOT));
        return p == READ || r != null && Boolean.TRUE.equals(r.get("admin"));
    }

    public void checkPermission(Permission p) {
        if (!hasPermission(p)) {
            throw new IllegalStateException((Emu.caller() == null ? "anonymous" : Emu.caller())
                    + " is missing the Overall/Administer permission");
        }
    }
}
