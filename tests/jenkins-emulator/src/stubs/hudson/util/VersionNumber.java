package hudson.util;

import java.util.ArrayList;
import java.util.List;

/** Stub of hudson.util.VersionNumber for dotted numeric versions such as 2.560. */
public class VersionNumber implements Comparable<VersionNumber> {
    private final String value;
    private final List<Integer> parts = new ArrayList<>();

    public VersionNumber(String version) {
        this.value = version;
        for (String p : version.split("[.-]")) {
            try { parts.add(Integer.parseInt(p)); } catch (NumberFormatException e) { break; }
        }
    }

    @Override
    public int compareTo(VersionNumber o) {
        for (int i = 0; i < Math.max(parts.size(), o.parts.size()); i++) {
            int a = i < parts.size() ? parts.get(i) : 0;
            int b = i < o.parts.size() ? o.parts.get(i) : 0;
            if (a != b) { return Integer.compare(a, b); }
        }
        return 0;
    }

    public boolean isOlderThan(VersionNumber o) { return compareTo(o) < 0; }
    public boolean isNewerThan(VersionNumber o) { return compareTo(o) > 0; }
    public boolean isOlderThanOrEqualTo(VersionNumber o) { return compareTo(o) <= 0; }
    public boolean isNewerThanOrEqualTo(VersionNumber o) { return compareTo(o) >= 0; }
    @Override public boolean equals(Object o) { return o instanceof VersionNumber && compareTo((VersionNumber) o) == 0; }
    @Override public int hashCode() { return parts.hashCode(); }
    @Override public String toString() { return value; }
}
