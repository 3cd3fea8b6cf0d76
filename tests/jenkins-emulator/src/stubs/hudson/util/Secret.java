package hudson.util;

/** Stub of hudson.util.Secret (no encryption: the emulator never persists secrets). */
public final class Secret {
    private final String value;

    private Secret(String value) { this.value = value; }

    public static Secret fromString(String data) { return new Secret(data == null ? "" : data); }
    public static String toString(Secret s) { return s == null ? "" : s.value; }
    public String getPlainText() { return value; }
    public String getEncryptedValue() { return "{emu}" + value.length(); }
    @Override public String toString() { return value; }
}
