package hudson.security;

/** Stub of hudson.security.SecurityRealm. */
public abstract class SecurityRealm {
    public boolean allowsSignup() { return false; }
}
