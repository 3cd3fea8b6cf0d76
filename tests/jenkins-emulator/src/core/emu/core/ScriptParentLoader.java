package emu.core;

import java.net.URL;

/**
 * Parent of every script class loader: hides the emulator's own classes ({@code emu.*}) so a
 * script sees the JDK, Groovy and the stub Jenkins classes only. Written in Java because
 * Groovy 2.4 cannot dispatch {@code super.loadClass} to the protected JDK method on Java 17.
 */
public final class ScriptParentLoader extends ClassLoader {
    public ScriptParentLoader(ClassLoader parent) { super(parent); }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (name.startsWith("emu.")) { throw new ClassNotFoundException(name); }
        return super.loadClass(name, resolve);
    }

    @Override
    public URL getResource(String name) {
        return name.startsWith("emu/") ? null : super.getResource(name);
    }
}
