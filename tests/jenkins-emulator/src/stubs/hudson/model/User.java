package hudson.model;

import emu.core.Emu;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import jenkins.security.ApiTokenProperty;

/**
 * Stub of hudson.model.User (reference §5): case-insensitive ids, in-memory registry, and
 * persistence only through save() (users/DIR/config.json, written atomically).
 */
public class User {
    private static final Map<String, User> ALL = new ConcurrentHashMap<>();
    private static volatile boolean loaded = false;

    private final String id;
    private volatile String fullName;
    private volatile String description;
    private final List<UserProperty> properties = new ArrayList<>();

    private User(String id, String fullName) {
        this.id = id;
        this.fullName = fullName;
        Map<String, Object> cfg = null;
        try {
            cfg = Emu.readJson(new File(Emu.userDir(id), "config.json"));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read config of " + id, e);
        }
        ApiTokenProperty p = new ApiTokenProperty();
        if (cfg != null) {
            if (cfg.get("fullName") != null) { this.fullName = (String) cfg.get("fullName"); }
            this.description = (String) cfg.get("description");
            p.emuLoad(cfg);
            @SuppressWarnings("unchecked")
            Map<String, Object> realm = (Map<String, Object>) cfg.get("emu.realm");
            if (realm != null) { Emu.realm.put(key(id), new ConcurrentHashMap<>(realm)); }
        }
        ((UserProperty) p).setUser(this);
        properties.add(p);
    }

    private static String key(String id) { return id.trim().toLowerCase(Locale.ROOT); }

    /** Loads every user saved under DATA/users (Jenkins loads them all at start). */
    private static synchronized void loadAll() {
        if (loaded) { return; }
        loaded = true;
        File[] dirs = new File(Emu.dataDir(), "users").listFiles();
        if (dirs == null) { return; }
        for (File d : dirs) {
            try {
                Map<String, Object> cfg = Emu.readJson(new File(d, "config.json"));
                if (cfg != null && cfg.get("id") != null) {
                    String id = (String) cfg.get("id");
                    ALL.computeIfAbsent(key(id), k -> new User(id, id));
                }
            } catch (IOException e) {
                throw new IllegalStateException("cannot load " + d, e);
            }
        }
    }

    public static User getById(String id, boolean create) {
        if (id == null) { return null; }
        loadAll();
        User u = ALL.get(key(id));
        if (u == null && create) {
            u = ALL.computeIfAbsent(key(id), k -> new User(id, id));
        }
        return u;
    }

    @Deprecated
    public static User get(String idOrFullName, boolean create) {
        return get(idOrFullName, create, Collections.emptyMap());
    }

    @Deprecated
    public static User get(String idOrFullName, boolean create, Map context) {
        if (idOrFullName == null) { return null; }
        User u = getById(idOrFullName, false);
        if (u != null) { return u; }
        for (User x : getAll()) {
            if (idOrFullName.equals(x.getFullName())) { return x; }
        }
        return getById(idOrFullName, create);
    }

    @Deprecated
    public static User get(String idOrFullName) { return getOrCreateByIdOrFullName(idOrFullName); }

    public static User getOrCreateByIdOrFullName(String idOrFullName) {
        return get(idOrFullName, true, Collections.emptyMap());
    }

    /** The user the request runs as, or null for anonymous. */
    public static User current() {
        String name = Emu.caller();
        return name == null ? null : getById(name, true);
    }

    public static Collection<User> getAll() {
        loadAll();
        List<User> r = new ArrayList<>(ALL.values());
        r.sort((a, b) -> a.getId().compareToIgnoreCase(b.getId()));
        return r;
    }

    public String getId() { return id; }
    public String getFullName() { return fullName; }
    public void setFullName(String name) { this.fullName = name == null || name.trim().isEmpty() ? id : name.trim(); }
    public String getDisplayName() { return getFullName(); }
    public String getDescription() { return description; }
    public void setDescription(String d) { this.description = d; }
    public String getUrl() { return "user/" + id; }
    public String getSearchUrl() { return "/user/" + id; }

    public <T extends UserProperty> T getProperty(Class<T> clazz) {
        synchronized (properties) {
            for (UserProperty p : properties) {
                if (clazz.isInstance(p)) { return clazz.cast(p); }
            }
        }
        return null;
    }

    public List<UserProperty> getAllProperties() {
        synchronized (properties) { return Collections.unmodifiableList(new ArrayList<>(properties)); }
    }

    public synchronized void addProperty(UserProperty p) throws IOException {
        synchronized (properties) {
            properties.removeIf(x -> x.getClass() == p.getClass());
            properties.add(p);
        }
        ((UserProperty) p).setUser(this);
        save();
    }

    /** Writes config.json (full name, properties, realm data); throws for reserved ids. */
    public synchronized void save() throws IOException {
        for (String bad : new String[] {"anonymous", "SYSTEM", "unknown"}) {
            if (id.trim().equalsIgnoreCase(bad)) { throw new IOException("Illegal username: " + id); }
            if (fullName.trim().equalsIgnoreCase(bad)) { throw new IOException("Illegal full name: " + fullName); }
        }
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("id", id);
        cfg.put("fullName", fullName);
        cfg.put("description", description);
        ApiTokenProperty p = getProperty(ApiTokenProperty.class);
        if (p != null) { p.emuSave(cfg); }
        Map<String, Object> realm = Emu.realm.get(key(id));
        if (realm != null) { cfg.put("emu.realm", realm); }
        Emu.writeAtomically(new File(Emu.dataDir(), "users/" + Emu.userDir(id).getName() + "/config.json"),
                Emu.toJson(cfg));
    }

    public void delete() throws IOException {
        ALL.remove(key(id));
        Emu.realm.remove(key(id));
        File d = Emu.userDir(id);
        File[] fs = d.listFiles();
        if (fs != null) { for (File f : fs) { f.delete(); } }
        d.delete();
    }

    @Override
    public String toString() { return fullName; }
}
