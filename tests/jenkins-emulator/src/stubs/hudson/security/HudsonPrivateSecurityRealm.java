package hudson.security;

import emu.core.Emu;
import hudson.model.User;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Stub of Jenkins' own user database: createAccount makes a user that token logins accept. */
public class HudsonPrivateSecurityRealm extends SecurityRealm {
    public static final HudsonPrivateSecurityRealm INSTANCE = new HudsonPrivateSecurityRealm();

    /** Creates (or re-passwords) a realm user and saves it. */
    public User createAccount(String userName, String password) throws IOException {
        User u = User.getById(userName, true);
        Map<String, Object> r = new ConcurrentHashMap<>();
        Map<String, Object> old = Emu.realm.get(userName.trim().toLowerCase(Locale.ROOT));
        r.put("admin", old != null && Boolean.TRUE.equals(old.get("admin")));
        String salt = Emu.hex(java.security.SecureRandom.getSeed(8));
        r.put("salt", salt);
        r.put("password", Emu.sha256Hex(salt + ":" + password));
        Emu.realm.put(userName.trim().toLowerCase(Locale.ROOT), r);
        u.save();
        return u;
    }

    public java.util.List<User> getAllUsers() {
        java.util.List<User> r = new java.util.ArrayList<>();
        for (User u : User.getAll()) {
            if (Emu.realm.containsKey(u.getId().toLowerCase(Locale.ROOT))) { r.add(u); }
        }
        return r;
    }

    public User getUser(String id) {
        User u = User.getById(id, false);
        return u != null && Emu.realm.containsKey(id.toLowerCase(Locale.ROOT)) ? u : null;
    }
}
