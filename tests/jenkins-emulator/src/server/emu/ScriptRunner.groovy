package emu

import emu.core.Emu
import emu.core.ScriptParentLoader
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer
import org.codehaus.groovy.runtime.InvokerHelper

/**
 * Runs script-console text as RemotingDiagnostics.executeGroovy does (reference §1.3): a fresh
 * GroovyShell with Jenkins' star imports and a bound {@code out}; the output, then
 * "Result: " + String.valueOf(value), or the Functions.printThrowable trace of a failure.
 */
class ScriptRunner {
    List<Map> scripts
    final ClassLoader parent = new ScriptParentLoader(ScriptRunner.classLoader)

    static { installClock() }

    /**
     * Scripts read the emulator's shiftable clock too (POST /__emu/clock), as a script on a
     * Jenkins whose host clock is off reads that clock: System.currentTimeMillis() and the
     * no-argument (and zone) now() of Instant, LocalDate, LocalDateTime, ZonedDateTime and
     * OffsetDateTime are replaced, for Groovy call sites, through their metaclasses. Java
     * code (the stubs, the JDK) is not affected; the stubs read Emu.clock() already.
     */
    static void installClock() {
        System.metaClass.static.currentTimeMillis = { -> Emu.now().toEpochMilli() }
        java.time.Instant.metaClass.static.now = { -> Emu.now() }
        java.time.LocalDate.metaClass.static.now = { -> java.time.LocalDate.now(Emu.clock()) }
        java.time.LocalDate.metaClass.static.now = { java.time.ZoneId z -> java.time.LocalDate.now(Emu.clock().withZone(z)) }
        java.time.LocalDateTime.metaClass.static.now = { -> java.time.LocalDateTime.now(Emu.clock()) }
        java.time.LocalDateTime.metaClass.static.now = { java.time.ZoneId z -> java.time.LocalDateTime.now(Emu.clock().withZone(z)) }
        java.time.ZonedDateTime.metaClass.static.now = { -> java.time.ZonedDateTime.now(Emu.clock()) }
        java.time.ZonedDateTime.metaClass.static.now = { java.time.ZoneId z -> java.time.ZonedDateTime.now(Emu.clock().withZone(z)) }
        java.time.OffsetDateTime.metaClass.static.now = { -> java.time.OffsetDateTime.now(Emu.clock()) }
        java.time.OffsetDateTime.metaClass.static.now = { java.time.ZoneId z -> java.time.OffsetDateTime.now(Emu.clock().withZone(z)) }
    }

    String run(String text, String user) {
        Map masked = maskPayloads(text)
        synchronized (scripts) {
            scripts << [sha256: Emu.sha256Hex(text), template_sha256: Emu.sha256Hex(masked.text),
                        payloads: masked.count, time: Emu.isoNow(), user: user]
        }
        StringWriter sw = new StringWriter()
        PrintWriter pw = new PrintWriter(sw)
        Binding binding = new Binding()
        binding.setVariable('out', pw)
        Emu.setCaller(user)
        if (masked.count > 0) {
            try {
                Class type = compiled(masked.compile as String)
                masked.payloads.eachWithIndex { String p, int i -> binding.setVariable(PAYLOAD_VARIABLE + i, p) }
                Object output = InvokerHelper.createScript(type, binding).run()
                if (output != null) { pw.println('Result: ' + String.valueOf(output)) }
            } catch (Throwable t) {
                pw.println(printThrowable(t).trim())
            } finally {
                pw.flush()
            }
            return sw.toString()
        }
        GroovyShell shell = new GroovyShell(parent, binding, compilerConfiguration())
        try {
            Object output = shell.evaluate(text)
            if (output != null) { pw.println('Result: ' + String.valueOf(output)) }
        } catch (Throwable t) {
            pw.println(printThrowable(t).trim())
        } finally {
            pw.flush()
            unload(shell)
        }
        sw.toString()
    }

    static CompilerConfiguration compilerConfiguration() {
        CompilerConfiguration cc = new CompilerConfiguration()
        cc.addCompilationCustomizers(new ImportCustomizer().addStarImports('jenkins', 'jenkins.model', 'hudson', 'hudson.model'))
        cc
    }

    /*
     * Compiled templates. The daemon's scripts are constant texts with one base64 payload
     * literal each (a nonce in it, so no two texts are alike); compiling each call's text
     * cost ~100 ms of a cold JVM's CPU, most of the emulator's work in the test suite. A
     * template is compiled once, with each payload literal read from the binding instead
     * (a String either way, on the same line), and its class is kept; the least recently
     * used of more than TEMPLATES_KEPT is unloaded. Real Jenkins compiles every call: this
     * changes the cost, not what a script sees or prints. Texts without a payload (the
     * tests' own scripts) are compiled per call and unloaded, as before.
     */
    static final String PAYLOAD_VARIABLE = '__emu_payload_'
    static final int TEMPLATES_KEPT = 32
    private final Map<String, Template> templates = new LinkedHashMap<String, Template>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Template> eldest) {
            if (size() <= TEMPLATES_KEPT) { return false }
            unload(eldest.value.shell)
            true
        }
    }

    static class Template {
        GroovyShell shell
        Class type
    }

    /** The class of a template's script, compiled on first use (compile errors propagate). */
    Class compiled(String template) {
        synchronized (templates) {
            Template t = templates.get(template)
            if (t == null) {
                GroovyShell shell = new GroovyShell(parent, new Binding(), compilerConfiguration())
                t = new Template(shell: shell, type: shell.parse(template).getClass())
                templates.put(template, t)
            }
            t.type
        }
    }

    static final java.util.regex.Pattern LITERAL = ~/'([A-Za-z0-9+\/]+={0,2})'/

    /**
     * The text with each single-quoted literal that is base64 of a JSON object replaced by
     * '@@PAYLOAD@@' (the daemon's placeholder), and how many were replaced: a test compares
     * template_sha256 with the SHA-256 of its own constant script texts.
     */
    static Map maskPayloads(String text) {
        StringBuilder sb = new StringBuilder()
        StringBuilder compile = new StringBuilder()
        List<String> payloads = []
        int last = 0
        java.util.regex.Matcher m = LITERAL.matcher(text)
        while (m.find()) {
            String body = m.group(1)
            boolean payload = false
            if (body.length() % 4 == 0) {
                try {
                    String json = new String(Base64.decoder.decode(body), 'UTF-8')
                    payload = json.startsWith('{') && new groovy.json.JsonSlurper().parseText(json) instanceof Map
                } catch (Exception ignored) {
                    payload = false
                }
            }
            String before = text.substring(last, m.start())
            sb.append(before).append(payload ? "'@@PAYLOAD@@'" : m.group(0))
            compile.append(before).append(payload ? "((String) getBinding().getVariable('${PAYLOAD_VARIABLE}${payloads.size()}'))" : m.group(0))
            if (payload) { payloads << body }
            last = m.end()
        }
        sb.append(text.substring(last))
        compile.append(text.substring(last))
        [text: sb.toString(), count: payloads.size(), compile: compile.toString(), payloads: payloads]
    }

    /** Drops every trace of the script classes so their loader can be collected. */
    static void unload(GroovyShell shell) {
        GroovyClassLoader gcl = shell.classLoader
        for (Class c : gcl.loadedClasses) {
            InvokerHelper.removeClass(c)
            GroovySystem.metaClassRegistry.removeMetaClass(c)
        }
        gcl.clearCache()
        shell.resetLoadedClasses()
    }

    /** Jenkins' Functions.printThrowable: innermost cause first, outer ones as "Caused: ". */
    static String printThrowable(Throwable t) {
        StringBuilder s = new StringBuilder()
        doPrintStackTrace(s, t, null, '', Collections.newSetFromMap(new IdentityHashMap<Throwable, Boolean>()))
        s.toString()
    }

    private static void doPrintStackTrace(StringBuilder s, Throwable t, Throwable higher, String prefix, Set<Throwable> encountered) {
        String nl = System.lineSeparator()
        if (!encountered.add(t)) {
            s.append('<cycle to ').append(t).append('>').append(nl)
            return
        }
        Throwable lower = t.cause
        if (lower != null) { doPrintStackTrace(s, lower, t, prefix, encountered) }
        for (Throwable suppressed : t.suppressed) {
            s.append(prefix).append('Also:   ')
            doPrintStackTrace(s, suppressed, t, prefix + '\t', encountered)
        }
        if (lower != null) { s.append(prefix).append('Caused: ') }
        String summary = t.toString()
        if (lower != null) {
            String suffix = ': ' + lower
            if (summary.endsWith(suffix)) { summary = summary.substring(0, summary.length() - suffix.length()) }
        }
        s.append(summary).append(nl)
        StackTraceElement[] trace = t.stackTrace
        int end = trace.length
        if (higher != null) {
            StackTraceElement[] higherTrace = higher.stackTrace
            while (end > 0) {
                int higherEnd = end + higherTrace.length - trace.length
                if (higherEnd <= 0 || higherTrace[higherEnd - 1] != trace[end - 1]) { break }
                end--
            }
        }
        for (int i = 0; i < end; i++) { s.append(prefix).append('\tat ').append(trace[i]).append(nl) }
    }
}
