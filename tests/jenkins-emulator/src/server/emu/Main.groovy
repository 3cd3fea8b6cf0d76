package emu

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import com.sun.net.httpserver.HttpsConfigurator
import com.sun.net.httpserver.HttpsServer
import emu.core.Emu
import hudson.model.User
import hudson.security.HudsonPrivateSecurityRealm
import java.lang.management.ManagementFactory
import java.security.KeyStore
import java.security.MessageDigest
import java.security.SecureRandom
import java.util.concurrent.Executors
import java.util.concurrent.ThreadFactory
import javax.net.ssl.KeyManagerFactory
import javax.net.ssl.SSLContext
import jenkins.model.Jenkins
import jenkins.security.ApiTokenProperty

/**
 * Entry point: parses the command line, prepares the data directory (admin, --users, TLS),
 * starts the HTTP(S) server on 127.0.0.1 and prints the one JSON line tests wait for.
 */
class Main {
    static void main(String[] argv) {
        Map<String, String> opts = [port: '0', version: '2.560', admin: 'admin', tier: '2548']
        boolean tls = false
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i]
            if (a == '--tls') { tls = true; continue }
            if (!a.startsWith('--') || i + 1 >= argv.length) { die("bad argument: $a") }
            opts[a.substring(2)] = argv[++i]
        }
        // The zone must be set before any date is computed: expiry is a local-day comparison.
        if (opts.timezone) { TimeZone.setDefault(TimeZone.getTimeZone(java.time.ZoneId.of(opts.timezone))) }
        if (!opts.data) { die('--data DIR is required') }
        File data = new File(opts.data).absoluteFile
        data.mkdirs()
        Emu.init(data, opts.version)
        Jenkins.VERSION = opts.version

        Map admin = setUpAdmin(data, opts.admin, opts.tier as int)
        (opts.users ?: '').split(',').findAll { it.trim() }.each { String n ->
            n = n.trim()
            if (!Emu.realm.containsKey(n.toLowerCase(Locale.ROOT))) {
                HudsonPrivateSecurityRealm.INSTANCE.createAccount(n, n)
            }
        }
        Emu.clearEvents()

        def state = new Server(version: opts.version, tier: opts.tier as int, tls: tls)
        HttpServer server
        String caFile = null
        InetSocketAddress addr = new InetSocketAddress(InetAddress.getByName('127.0.0.1'), opts.port as int)
        if (tls) {
            def (SSLContext ctx, String pem) = makeTls(data)
            caFile = pem
            HttpsServer s = HttpsServer.create(addr, 128)
            s.httpsConfigurator = new HttpsConfigurator(ctx)
            server = s
        } else {
            server = HttpServer.create(addr, 128)
        }
        int n = 0
        server.executor = Executors.newFixedThreadPool(32, { Runnable r ->
            Thread t = new Thread(r, "emu-http-${n++}")
            t.daemon = true
            t
        } as ThreadFactory)
        server.createContext('/', state)
        server.start()
        int port = server.address.port
        state.baseUrl = "${tls ? 'https' : 'http'}://127.0.0.1:${port}/"

        sun.misc.Signal.handle(new sun.misc.Signal('TERM'), { sig ->
            server.stop(0)
            System.out.flush()
            Runtime.runtime.halt(0)
        } as sun.misc.SignalHandler)

        def line = new LinkedHashMap()
        line.url = state.baseUrl
        line.admin_user = admin.name
        line.admin_token = admin.token
        line.version = opts.version
        line.pid = Emu.pid()
        line.ca_file = caFile
        line.data = data.path
        System.out.println(Emu.toJson(line))
        System.out.flush()
        // Scripts' System.out goes to the log (stderr) as in Jenkins, and cannot fill the pipe
        // of a caller that stopped reading after the JSON line.
        System.setOut(System.err)
        System.err.println("jenkins-emulator ${opts.version} (stub tier ${opts.tier}) listening on ${state.baseUrl}, zone ${TimeZone.default.ID}")
    }

    static void die(String msg) {
        System.err.println("jenkins-emulator: $msg")
        System.exit(2)
    }

    /** Creates the admin (realm user, Administer, a fixed API token) on first start. */
    static Map setUpAdmin(File data, String name, int tier) {
        File f = new File(data, 'emu-admin.json')
        Map m = Emu.readJson(f)
        if (m != null) {
            // Load the user so the realm map knows it.
            User.getById(m.name as String, false)
            return m
        }
        String password = hex(12)
        String token = '11' + hex(16)
        User u = HudsonPrivateSecurityRealm.INSTANCE.createAccount(name, password)
        Emu.realm[name.toLowerCase(Locale.ROOT)].admin = true
        def store = u.getProperty(ApiTokenProperty).tokenStore
        if (tier >= 2548) {
            store.addFixedNewToken('emulator admin', token, null)
        } else {
            store.addFixedNewToken('emulator admin', token)
        }
        u.save()
        m = [name: name, password: password, token: token]
        Emu.writeAtomically(f, Emu.toJson(m))
        m
    }

    static String hex(int bytes) {
        byte[] b = new byte[bytes]
        new SecureRandom().nextBytes(b)
        Emu.hex(b)
    }

    /** A self-signed certificate for 127.0.0.1/localhost made by keytool, exported as PEM. */
    static List makeTls(File data) {
        File dir = new File(data, 'tls')
        dir.mkdirs()
        File ks = new File(dir, 'emulator.p12')
        File pem = new File(dir, 'cert.pem')
        String pass = 'emulator'
        String keytool = System.getProperty('java.home') + '/bin/keytool'
        if (!ks.isFile() || !pem.isFile()) {
            ks.delete()
            runTool([keytool, '-genkeypair', '-alias', 'emulator', '-keyalg', 'EC', '-groupname', 'secp256r1',
                     '-sigalg', 'SHA256withECDSA', '-validity', '3650', '-dname', 'CN=localhost',
                     '-ext', 'SAN=ip:127.0.0.1,dns:localhost', '-keystore', ks.path, '-storetype', 'PKCS12',
                     '-storepass', pass, '-keypass', pass])
            runTool([keytool, '-exportcert', '-rfc', '-alias', 'emulator', '-keystore', ks.path,
                     '-storepass', pass, '-file', pem.path])
        }
        KeyStore store = KeyStore.getInstance('PKCS12')
        ks.withInputStream { store.load(it, pass.toCharArray()) }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.defaultAlgorithm)
        kmf.init(store, pass.toCharArray())
        SSLContext ctx = SSLContext.getInstance('TLS')
        ctx.init(kmf.keyManagers, null, null)
        [ctx, pem.path]
    }

    static void runTool(List<String> cmd) {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start()
        String out = p.inputStream.text
        if (p.waitFor() != 0) { die("${cmd[1]} failed: $out") }
    }
}
