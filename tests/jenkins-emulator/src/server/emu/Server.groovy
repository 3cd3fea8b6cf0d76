package emu

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpHandler
import emu.core.Emu
import groovy.json.JsonSlurper
import hudson.model.User
import hudson.security.HudsonPrivateSecurityRealm
import java.lang.management.ManagementFactory
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.charset.StandardCharsets
import java.security.MessageDigest
import java.security.SecureRandom
import java.time.LocalDate
import java.time.OffsetDateTime
import java.time.format.DateTimeFormatter
import java.time.format.FormatStyle
import java.util.concurrent.ConcurrentHashMap
import jenkins.security.ApiTokenProperty

/** A buffered answer; faults may delay, replace or drop it before it is written. */
class Resp {
    int status = 200
    String contentType = 'text/plain;charset=UTF-8'
    Map<String, String> headers = [:]
    List<String> cookies = []
    byte[] body = new byte[0]
    boolean drop = false

    Resp text(String s) { body = s.getBytes(StandardCharsets.UTF_8); this }
}

/** Thrown while reading a request that Jetty would refuse with 400. */
class BadRequest extends RuntimeException {
    BadRequest(String m) { super(m) }
}

/** One parsed request and who sent it. */
class Req {
    HttpExchange ex
    String method
    String path
    byte[] body
    String user           // canonical id, null = anonymous
    boolean tokenAuth     // authenticated by an API token (exempt from crumbs)
    private Map<String, List<String>> params

    String header(String n) { ex.requestHeaders.getFirst(n) }

    /** Form parameters from the query and an urlencoded body, strictly UTF-8 (else 400). */
    Map<String, List<String>> params() {
        if (params == null) {
            Map<String, List<String>> p = [:]
            Server.parseForm(ex.requestURI.rawQuery, p)
            String ct = header('Content-Type') ?: ''
            if (method == 'POST' && ct.toLowerCase(Locale.ROOT).startsWith('application/x-www-form-urlencoded')) {
                Server.parseForm(new String(body, StandardCharsets.ISO_8859_1), p)
            }
            params = p
        }
        params
    }

    String param(String n) { params()[n]?.get(0) }
}

/**
 * The emulated Jenkins HTTP surface (reference §1, §2, §4) plus the /__emu/ control API.
 */
class Server implements HttpHandler {
    static final int MAX_BODY = 16 * 1024 * 1024
    static final String CRUMB_FIELD = 'Jenkins-Crumb'

    String version
    int tier
    boolean tls
    String baseUrl
    final String sessionHash = md5Hex(jenkins.model.Jenkins.VERSION + System.currentTimeMillis()).substring(0, 8)
    final String cookieName = 'JSESSIONID.' + Main.hex(4)
    final byte[] crumbSalt = SecureRandom.getSeed(16)
    final Set<String> sessions = ConcurrentHashMap.newKeySet()
    final List<Map> faults = []
    /** Added before every answer but the control API's: a network round trip (the benches). */
    volatile long latencyMs = 0
    final List<Map> scripts = []
    final Map<String, Integer> counters = new TreeMap<>()
    final ScriptRunner runner = new ScriptRunner(scripts: scripts)

    static String md5Hex(String s) { Emu.hex(MessageDigest.getInstance('MD5').digest(s.getBytes(StandardCharsets.UTF_8))) }

    @Override
    void handle(HttpExchange ex) {
        Resp r
        Req req = new Req(ex: ex, method: ex.requestMethod, path: ex.requestURI.rawPath ?: '/')
        try {
            req.body = readBody(ex)
            if (req.body == null) {
                r = containerError(413, 'Request entity too large')
                r.headers['Connection'] = 'close'
            } else {
                r = dispatch(req)
            }
        } catch (BadRequest e) {
            r = containerError(400, e.message)
        } catch (Throwable t) {
            System.err.println("jenkins-emulator: unhandled ${req.method} ${req.path}: $t")
            t.printStackTrace()
            r = oops(500)
        } finally {
            Emu.setCaller(null)
        }
        try {
            if (r.drop) {
                // No status line at all: the client sees the connection close.
                ex.close()
                return
            }
            r.headers.each { k, v -> ex.responseHeaders.set(k, v) }
            r.cookies.each { ex.responseHeaders.add('Set-Cookie', it) }
            if (r.contentType) { ex.responseHeaders.set('Content-Type', r.contentType) }
            ex.responseHeaders.set('Server', 'Jetty(12.0.emulator)')
            boolean noBody = req.method == 'HEAD' || r.status == 204 || r.status == 304
            ex.sendResponseHeaders(r.status, noBody ? -1 : (r.body.length == 0 ? -1 : r.body.length))
            if (!noBody && r.body.length > 0) { ex.responseBody.write(r.body) }
        } catch (IOException ignored) {
            // The client went away; nothing to answer.
        } finally {
            ex.close()
        }
    }

    /** The whole body, or null when it exceeds MAX_BODY (the rest is not read). */
    static byte[] readBody(HttpExchange ex) {
        InputStream input = ex.requestBody
        ByteArrayOutputStream out = new ByteArrayOutputStream()
        byte[] buf = new byte[65536]
        int n
        while ((n = input.read(buf)) > 0) {
            out.write(buf, 0, n)
            if (out.size() > MAX_BODY) { return null }
        }
        out.toByteArray()
    }

    // ------------------------------------------------------------------ dispatch

    Resp dispatch(Req req) {
        String path = decodePath(req.path)
        req.path = path
        boolean control = path.startsWith('/__emu/')
        if (!control) {
            synchronized (counters) {
                String k = "${req.method} ${path}"
                counters[k] = (counters[k] ?: 0) + 1
            }
        }
        if (!control && latencyMs > 0) { sleep(latencyMs) }
        Map fault = control ? null : takeFault(req)
        if (fault) {
            switch (fault.kind) {
                case 'status':
                    return containerError((fault.status ?: 503) as int, 'Injected fault')
                case 'drop_before':
                    return new Resp(drop: true)
                case 'delay_before':
                    sleep((fault.delay_ms ?: 1000) as long)
                    break
            }
        }
        Resp r = route(req)
        if (fault) {
            switch (fault.kind) {
                case 'delay_after':
                    sleep((fault.delay_ms ?: 1000) as long)
                    break
                case 'garbage':
                    r = new Resp(status: 200, contentType: r.contentType ?: 'text/plain;charset=UTF-8')
                    // Not UTF-8, not the script's output: what a broken proxy might hand back.
                    byte[] g = new byte[256]
                    new Random().nextBytes(g)
                    g[0] = (byte) 0xff
                    r.body = g
                    break
                case 'run_then_drop':
                    r = new Resp(drop: true)
                    break
            }
        }
        r
    }

    Map takeFault(Req req) {
        synchronized (faults) {
            String raw = null
            for (Map f : faults) {
                if (f.path != req.path || (f.count as int) <= 0) { continue }
                if (f.match) {
                    if (raw == null) {
                        String s = new String(req.body, StandardCharsets.UTF_8)
                        raw = s + '\n' + lenientDecode(s) + '\n' + lenientDecode(req.ex.requestURI.rawQuery ?: '')
                    }
                    if (!raw.contains(f.match as String)) { continue }
                }
                f.count = (f.count as int) - 1
                if ((f.count as int) <= 0) { faults.remove(f) }
                return f
            }
        }
        null
    }

    Resp route(Req req) {
        String p = req.path
        Resp denied = authenticate(req)
        if (denied) { return denied }
        if (p.startsWith('/__emu/')) { return new Control(server: this).handle(req) }
        Emu.setCaller(req.user)
        if (req.method == 'POST') {
            Resp c = checkCrumb(req)
            if (c) { return c }
        }
        if (p == '/whoAmI/api/json' || p == '/whoAmI/api/json/') { return whoAmI(req) }
        // Everything else needs Overall/Read, which anonymous does not have here.
        if (req.user == null) { return anonymousDenied(req) }
        if (p == '/scriptText' || p == builtInNode() + 'scriptText') { return scriptText(req) }
        if (p == '/api/json') { return apiJson(req) }
        if (p == '/crumbIssuer/api/json') { return crumbIssuer(req) }
        if (p == '/crumbIssuer/api/xml') { return crumbIssuerXml(req) }
        if (p == '/me/api/json') { return userJson(User.getById(req.user, true)) }
        def m = p =~ '^/user/([^/]+)/api/json/?$'
        if (m.matches()) {
            User u = User.getById(m.group(1), false)
            return u == null ? notFound() : userJson(u)
        }
        m = p =~ '^/user/([^/]+)/descriptorByName/jenkins\\.security\\.ApiTokenProperty/([A-Za-z]+)/?$'
        if (m.matches()) { return new TokenRest(server: this).handle(req, m.group(1), m.group(2)) }
        notFound()
    }

    // ------------------------------------------------------------------ auth and CSRF

    /** Preemptive Basic only: null when the request may go on (maybe anonymous), else the answer. */
    Resp authenticate(Req req) {
        String h = req.header('Authorization')
        if (h == null || !h.regionMatches(true, 0, 'Basic ', 0, 6)) { return null }
        String decoded
        try {
            decoded = new String(Base64.decoder.decode(h.substring(6).trim()), StandardCharsets.UTF_8)
        } catch (IllegalArgumentException e) {
            decoded = ''  // Jenkins turns invalid base64 into an empty string
        }
        int colon = decoded.indexOf(':')
        if (colon < 0) {
            Emu.event('login_failed', null, null, 'Malformed HTTP basic Authorization header')
            return unauthorized()
        }
        String name = decoded.substring(0, colon)
        String secret = decoded.substring(colon + 1)
        User u = name.trim() ? User.getById(name, false) : null
        if (u != null) {
            ApiTokenProperty prop = u.getProperty(ApiTokenProperty)
            def t = prop?.tokenStore?.findMatchingToken(secret)
            if (t != null && prop.matchesPassword(secret)) {
                if (!Emu.realm.containsKey(u.id.toLowerCase(Locale.ROOT))) {
                    // The realm throws UsernameNotFoundException -> ServletException -> 500 Oops.
                    Emu.event('login_failed', u.id, t.uuid, 'user not in the security realm')
                    return oops(500)
                }
                Emu.event('login', u.id, t.uuid, t.name)
                req.user = u.id
                req.tokenAuth = true
                return null
            }
        }
        Map realm = Emu.realm[name.toLowerCase(Locale.ROOT)]
        if (realm != null && realm.password == Emu.sha256Hex(realm.salt + ':' + secret)) {
            Emu.event('login', u?.id ?: name, null, null)
            req.user = u?.id ?: name
            return null
        }
        Emu.event('login_failed', name, null, null)
        unauthorized()
    }

    boolean isAdmin(String user) {
        user != null && Emu.realm[user.toLowerCase(Locale.ROOT)]?.admin == true
    }

    String crumbFor(String authName, String sessionId) {
        MessageDigest md = MessageDigest.getInstance('SHA-256')
        md.update("${authName};${sessionId}".toString().getBytes(StandardCharsets.UTF_8))
        Emu.hex(md.digest(crumbSalt))
    }

    String sessionOf(Req req) {
        for (String h : req.ex.requestHeaders.get('Cookie') ?: []) {
            for (String c : h.split(';')) {
                String[] kv = c.trim().split('=', 2)
                if (kv.length == 2 && kv[0] == cookieName && sessions.contains(kv[1])) { return kv[1] }
            }
        }
        null
    }

    /** Crumbs are checked for POSTs not authenticated by an API token (ApiCrumbExclusion). */
    Resp checkCrumb(Req req) {
        if (req.tokenAuth) { return null }
        String crumb = req.header(CRUMB_FIELD) ?: req.param(CRUMB_FIELD)
        String session = sessionOf(req)
        if (crumb != null && session != null
                && MessageDigest.isEqual(crumb.bytes, crumbFor(req.user ?: 'anonymous', session).bytes)) {
            return null
        }
        containerError(403, 'No valid crumb was included in the request')
    }

    /** The built-in node was renamed from (master) in 2.307. */
    String builtInNode() {
        new hudson.util.VersionNumber(version).isOlderThan(new hudson.util.VersionNumber('2.307')) ?
                '/computer/(master)/' : '/computer/(built-in)/'
    }

    /** The xpath form scripts often use: text/plain "Jenkins-Crumb:<crumb>"; else the XML document. */
    Resp crumbIssuerXml(Req req) {
        Resp j = crumbIssuer(req)
        Map m = new JsonSlurper().parseText(new String(j.body, StandardCharsets.UTF_8)) as Map
        String xpath = req.param('xpath')
        if (xpath == 'concat(//crumbRequestField,":",//crumb)') {
            j.contentType = 'text/plain;charset=UTF-8'
            return j.text("${m.crumbRequestField}:${m.crumb}")
        }
        if (xpath != null) { return containerError(400, 'Unsupported xpath in the emulator') }
        j.contentType = 'application/xml;charset=UTF-8'
        j.text("<defaultCrumbIssuer _class='hudson.security.csrf.DefaultCrumbIssuer'><crumb>${m.crumb}</crumb>" +
                "<crumbRequestField>${m.crumbRequestField}</crumbRequestField></defaultCrumbIssuer>")
    }

    Resp crumbIssuer(Req req) {
        Resp r = json([:])
        String session = sessionOf(req)
        if (session == null) {
            session = Main.hex(12)
            sessions << session
            r.cookies << "${cookieName}=${session}; Path=/; HttpOnly".toString()
        }
        def m = [_class: 'hudson.security.csrf.DefaultCrumbIssuer', crumb: crumbFor(req.user, session),
                 crumbRequestField: CRUMB_FIELD]
        r.text(Emu.toJson(m))
        r.headers['X-Content-Type-Options'] = 'nosniff'
        r.headers['X-Frame-Options'] = 'deny'
        r
    }

    // ------------------------------------------------------------------ endpoints

    Resp scriptText(Req req) {
        if (!isAdmin(req.user)) { return accessDenied(req.user) }
        String text = req.param('script')
        if (text == null) { return new Resp() }
        if (req.method != 'POST') { return oops(405) }
        new Resp().text(runner.run(text, req.user))
    }

    Resp apiJson(Req req) {
        json([_class: 'hudson.model.Hudson', assignedLabels: [[name: 'built-in']], mode: 'NORMAL',
              nodeDescription: "the Jenkins controller's built-in node", nodeName: '', numExecutors: 2,
              description: null, jobs: [], quietingDown: false, url: baseUrl, useCrumbs: true,
              useSecurity: true, views: [[_class: 'hudson.model.AllView', name: 'all', url: baseUrl]]])
    }

    Resp whoAmI(Req req) {
        boolean anon = req.user == null
        // Like Jenkins: the anonymous token counts as authenticated.
        Resp r = json([_class: 'hudson.security.WhoAmI', anonymous: anon, authenticated: true,
                       authorities: anon ? ['anonymous'] : ['authenticated'], name: anon ? 'anonymous' : req.user])
        r
    }

    Resp userJson(User u) {
        json([_class: 'hudson.model.User', absoluteUrl: "${baseUrl}user/${u.id}".toString(),
              description: u.description, fullName: u.fullName, id: u.id,
              property: [[_class: 'jenkins.security.ApiTokenProperty']]])
    }

    Resp json(Map m) {
        Resp r = new Resp(contentType: 'application/json;charset=UTF-8').text(Emu.toJson(m))
        r.headers['X-Jenkins'] = version
        r.headers['X-Jenkins-Session'] = sessionHash
        r
    }

    // ------------------------------------------------------------------ error pages

    Resp unauthorized() {
        Resp r = containerError(401, 'Unauthorized')
        r.headers['WWW-Authenticate'] = 'Basic realm="Jenkins"'
        r
    }

    Resp anonymousDenied(Req req) {
        if (req.header('X-Requested-With') == 'XMLHttpRequest') { return containerError(403, 'Forbidden') }
        String from = URLEncoder.encode(req.ex.requestURI.rawPath, 'UTF-8')
        Resp r = new Resp(status: 403, contentType: 'text/html;charset=UTF-8')
        r.headers['X-Hudson'] = '1.395'
        r.headers['X-Jenkins'] = version
        r.headers['X-Jenkins-Session'] = sessionHash
        r.text("<html><head><meta http-equiv='refresh' content='1;url=/login?from=${from}'/>" +
                "<script id='redirect' data-redirect-url='/login?from=${from}' src='/static/redirect.js'></script></head>" +
                "<body style='background-color:white; color:white;'>\nAuthentication required\n<!--\n-->\n\n</body></html>" +
                ' ' * 300)
    }

    Resp accessDenied(String user) {
        Resp r = new Resp(status: 403, contentType: 'text/html;charset=UTF-8')
        r.headers['X-You-Are-Authenticated-As'] = user
        r.headers['X-You-Are-In-Group-Disabled'] = 'JENKINS-39402: use -Dhudson.security.AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose'
        r.headers['X-Required-Permission'] = 'hudson.model.Hudson.Administer'
        r.text("<!DOCTYPE html><html><head><title>Access Denied [Jenkins]</title></head><body><h1>Access Denied</h1>" +
                "<p>${esc(user)} is missing the Overall/Administer permission</p></body></html>")
    }

    Resp oops(int status) {
        Resp r = new Resp(status: status, contentType: 'text/html;charset=UTF-8')
        r.headers['X-Jenkins'] = version
        r.headers['X-Jenkins-Session'] = sessionHash
        r.text("<!DOCTYPE html><html><head><title>Jenkins</title></head><body><h1>Oops!</h1>" +
                "<p>A problem occurred while processing the request</p><p>Logging ID=${UUID.randomUUID()}</p></body></html>")
    }

    Resp notFound() {
        Resp r = new Resp(status: 404, contentType: 'text/html;charset=UTF-8')
        r.text('<!DOCTYPE html><html><head><title>Not Found [Jenkins]</title></head><body><h2>Not Found</h2></body></html>')
    }

    /** A servlet-container error page (the markup varies in Jenkins; tests assert the status). */
    static Resp containerError(int status, String message) {
        Resp r = new Resp(status: status, contentType: 'text/html;charset=iso-8859-1')
        r.text("<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n" +
                "<title>Error ${status} ${esc(message)}</title>\n</head>\n<body>\n<h2>HTTP ERROR ${status} ${esc(message)}</h2>\n" +
                "</body>\n</html>\n")
    }

    static String esc(String s) {
        (s ?: '').replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')
    }

    // ------------------------------------------------------------------ decoding

    /** Percent-decodes strictly: a bad escape or bytes that are not UTF-8 give 400, as Jetty does. */
    @groovy.transform.CompileStatic
    static String strictDecode(String s, boolean plusIsSpace) {
        if (s.indexOf('%') < 0 && s.indexOf('+') < 0 && s.chars().allMatch { int c -> c < 128 }) { return s }
        ByteArrayOutputStream out = new ByteArrayOutputStream()
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i)
            if (c == '%' as char) {
                if (i + 2 >= s.length()) { throw new BadRequest('Bad percent encoding') }
                int hi = Character.digit(s.charAt(i + 1), 16)
                int lo = Character.digit(s.charAt(i + 2), 16)
                if (hi < 0 || lo < 0) { throw new BadRequest('Bad percent encoding') }
                out.write(hi * 16 + lo)
                i += 2
            } else if (c == '+' as char && plusIsSpace) {
                out.write(32)
            } else if (c > 255) {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8)
                out.write(b, 0, b.length)
            } else {
                out.write((int) c)
            }
        }
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(out.toByteArray())).toString()
        } catch (CharacterCodingException e) {
            throw new BadRequest('Invalid UTF-8')
        }
    }

    static String lenientDecode(String s) {
        try {
            return strictDecode(s, true)
        } catch (BadRequest e) {
            return s
        }
    }

    static String decodePath(String raw) { strictDecode(raw, false) }

    static void parseForm(String s, Map<String, List<String>> into) {
        if (!s) { return }
        for (String pair : s.split('&')) {
            if (!pair) { continue }
            int eq = pair.indexOf('=')
            String k = strictDecode(eq < 0 ? pair : pair.substring(0, eq), true)
            String v = eq < 0 ? '' : strictDecode(pair.substring(eq + 1), true)
            into.computeIfAbsent(k) { [] } << v
        }
    }
}
