package emu.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Emulator runtime shared by the stub Jenkins classes and the HTTP server: the one shiftable
 * clock, the data directory, the event log and the identity of the thread's caller.
 * Scripts cannot see this package (the script class loader hides {@code emu.*}).
 */
public final class Emu {
    private Emu() {}

    private static volatile File dataDir = new File(".");
    private static volatile String version = "2.560";
    private static volatile long shiftSeconds = 0;
    private static final List<Map<String, Object>> events = new ArrayList<>();
    private static final ThreadLocal<String> caller = new ThreadLocal<>();

    public static void init(File data, String jenkinsVersion) {
        dataDir = data;
        version = jenkinsVersion;
    }

    public static File dataDir() { return dataDir; }
    public static String version() { return version; }

    // ---- clock: every "now" of the stubs goes through here so /__emu/clock moves them all.
    public static synchronized void shift(long seconds) { shiftSeconds += seconds; }
    public static long shiftSeconds() { return shiftSeconds; }
    /** The emulator's clock in the JVM default zone (set from --timezone before anything runs). */
    public static Clock clock() {
        return Clock.offset(Clock.systemDefaultZone(), Duration.ofSeconds(shiftSeconds));
    }
    public static Instant now() { return Instant.now(clock()); }
    public static LocalDate today() { return LocalDate.now(clock()); }
    public static String isoNow() { return OffsetDateTime.now(clock()).toString(); }

    // ---- caller identity (User.current()); null = anonymous.
    public static void setCaller(String name) { caller.set(name); }
    public static String caller() { return caller.get(); }

    // ---- event log
    public static void event(String event, String user, String uuid, String name) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("time", isoNow());
        e.put("event", event);
        e.put("user", user);
        e.put("uuid", uuid);
        e.put("name", name);
        synchronized (events) { events.add(e); }
    }
    public static void clearEvents() {
        synchronized (events) { events.clear(); }
    }
    public static List<Map<String, Object>> events() {
        synchronized (events) { return new ArrayList<>(events); }
    }

    /**
     * Test-only: when the JVM runs with -Demu.recordTokens=FILE, appends each minted plain
     * token to FILE (one a line), so a test can look for every value in what the daemon
     * printed and wrote. Scripts cannot see this class.
     */
    public static synchronized void recordPlainToken(String plain) {
        String file = System.getProperty("emu.recordTokens");
        if (file == null || file.isEmpty()) {
            return;
        }
        try {
            Files.write(new File(file).toPath(), (plain + "\n").getBytes(StandardCharsets.UTF_8),
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    // ---- helpers
    public static String sha256Hex(String s) {
        return hex(sha256(s.getBytes(StandardCharsets.UTF_8)));
    }
    public static byte[] sha256(byte[] b) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(b);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
    public static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) { sb.append(String.format("%02x", x & 0xff)); }
        return sb.toString();
    }

    /** Writes {@code text} to {@code f} through a temporary file and an atomic rename. */
    public static void writeAtomically(File f, String text) throws IOException {
        File dir = f.getParentFile();
        Files.createDirectories(dir.toPath());
        File tmp = File.createTempFile(f.getName(), ".tmp", dir);
        try {
            Files.write(tmp.toPath(), text.getBytes(StandardCharsets.UTF_8));
            Files.move(tmp.toPath(), f.toPath(), StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        } finally {
            tmp.delete();
        }
    }

    /** Our pid (Groovy 2.4 cannot call static interface methods such as ProcessHandle.current()). */
    public static long pid() { return ProcessHandle.current().pid(); }

    public static String toJson(Object o) { return groovy.json.JsonOutput.toJson(o); }

    @SuppressWarnings("unchecked")
    public static Map<String, Object> readJson(File f) throws IOException {
        if (!f.isFile()) { return null; }
        Object o = new groovy.json.JsonSlurper().parseText(
                new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8));
        return (Map<String, Object>) o;
    }

    /** Directory of a user: lower-cased id (ids are case-insensitive), made file-name safe. */
    public static File userDir(String id) {
        String key = id.toLowerCase(java.util.Locale.ROOT);
        StringBuilder sb = new StringBuilder();
        for (char c : key.toCharArray()) {
            if (Character.isLetterOrDigit(c) && c < 128 || c == '-' || c == '.' && sb.length() > 0) {
                sb.append(c);
            } else {
                sb.append('_');
            }
        }
        if (sb.length() > 14) { sb.setLength(14); }
        return new File(new File(dataDir, "users"), sb + "_" + sha256Hex(key).substring(0, 16));
    }

    /**
     * Security-realm data per lower-cased user id ({@code password}: salted hash, {@code admin}:
     * bool). Kept outside the User stub so scripts cannot see it; User.save() persists it.
     */
    public static final Map<String, Map<String, Object>> realm = new java.util.concurrent.ConcurrentHashMap<>();
}
