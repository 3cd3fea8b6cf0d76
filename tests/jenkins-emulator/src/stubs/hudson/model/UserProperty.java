package hudson.model;

/** Stub of hudson.model.UserProperty: a property attached to one {@link User}. */
public abstract class UserProperty {
    protected transient User user;

    protected void setUser(User u) { this.user = u; }
}
