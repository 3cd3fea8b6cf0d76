package hudson.security;

/** Stub of hudson.security.Permission: only the id matters to the emulator. */
public final class Permission {
    public static final Permission HUDSON_ADMINISTER = new Permission("hudson.model.Hudson.Administer");
    public static final Permission READ = new Permission("hudson.model.Hudson.Read");

    private final String id;

    private Permission(String id) { this.id = id; }

    public String getId() { return id; }
    @Override public String toString() { return "Permission[" + id + "]"; }
}
