package emu

import emu.core.Emu
import groovy.json.JsonSlurper
import hudson.model.User
import hudson.security.HudsonPrivateSecurityRealm
import java.lang.management.ManagementFactory
import jenkins.security.ApiTokenProperty

/** The emulator-only test-control API under /__emu/ (admin Basic auth, JSON in and out). */
class Control {
    static final Set<String> KINDS = ['status', 'delay_before', 'delay_after', 'garbage', 'drop_before', 'run_then_drop'] as Set

    Server server

    Resp handle(Req req) {
        if (req.user == null) { return server.anonymousDenied(req) }
        if (!server.isAdmin(req.user)) { return server.accessDenied(req.user) }
        String what = "${req.method} ${req.path}"
        switch (what) {
            case 'POST /__emu/users': return createUser(body(req))
            case 'POST /__emu/faults': return addFault(body(req))
            case 'DELETE /__emu/faults':
                synchronized (server.faults) { server.faults.clear() }
                return ok([ok: true])
            case 'GET /__emu/faults':
                synchronized (server.faults) { return ok(server.faults.collect { new LinkedHashMap(it) }) }
            case 'POST /__emu/clock': return clock(body(req))
            case 'POST /__emu/latency':
                server.latencyMs = Math.max(0L, (body(req).ms ?: 0) as long)
                return ok([ms: server.latencyMs])
            case 'GET /__emu/state': return ok(state())
            case 'GET /__emu/events': return ok(Emu.events())
            case 'DELETE /__emu/events':
                Emu.clearEvents()
                return ok([ok: true])
            case 'DELETE /__emu/scripts':
                synchronized (server.scripts) { server.scripts.clear() }
                return ok([ok: true])
            case 'GET /__emu/scripts':
                synchronized (server.scripts) { return ok(new ArrayList(server.scripts)) }
            case 'GET /__emu/counters':
                synchronized (server.counters) { return ok(new TreeMap(server.counters)) }
            case 'POST /__emu/reset-counters':
                synchronized (server.counters) { server.counters.clear() }
                return ok([ok: true])
            case 'GET /__emu/memory': return ok(memory())
        }
        error(404, "unknown control request: $what")
    }

    Map body(Req req) {
        try {
            Object o = new JsonSlurper().parseText(new String(req.body, 'UTF-8') ?: '{}')
            if (o instanceof Map) { return o }
        } catch (Exception ignored) {
            // fall through
        }
        throw new BadRequest('body must be a JSON object')
    }

    Resp createUser(Map b) {
        String name = b.name
        if (!name?.trim()) { return error(400, 'name is required') }
        boolean realm = b.realm == null ? true : b.realm as boolean
        User u
        if (realm) {
            u = HudsonPrivateSecurityRealm.INSTANCE.createAccount(name, (b.password ?: name) as String)
            Emu.realm[name.toLowerCase(Locale.ROOT)].admin = b.admin as boolean
        } else {
            u = User.getById(name, true)
        }
        u.save()
        ok([name: u.id, realm: realm, admin: realm && b.admin as boolean])
    }

    Resp addFault(Map b) {
        if (!(b.kind in KINDS)) { return error(400, "kind must be one of ${KINDS.sort()}") }
        if (!(b.path instanceof String) || !b.path.startsWith('/')) { return error(400, 'path must start with /') }
        Map f = [path: b.path, count: (b.count ?: 1) as int, match: b.match, kind: b.kind,
                 status: (b.status ?: 503) as int, delay_ms: (b.delay_ms ?: 1000) as long]
        synchronized (server.faults) { server.faults << f }
        ok(f)
    }

    Resp clock(Map b) {
        long secs = ((b.shift_days ?: 0) as long) * 86400L + ((b.shift_seconds ?: 0) as long)
        Emu.shift(secs)
        ok([now: Emu.isoNow(), today: Emu.today().toString(), shift_seconds: Emu.shiftSeconds()])
    }

    Map state() {
        def users = User.getAll().collect { User u ->
            Map realm = Emu.realm[u.id.toLowerCase(Locale.ROOT)]
            ApiTokenProperty p = u.getProperty(ApiTokenProperty)
            def tokens = p.tokenStore.tokenListSortedByName.collect { t ->
                def s = p.tokenStats.findTokenStatsById(t.uuid)
                [uuid: t.uuid, name: t.name, creation: t.creationDate?.toInstant()?.toString(),
                 expiration: t.emuExpiration()?.toString(), legacy: t.legacy,
                 useCounter: s.useCounter, lastUseDate: s.lastUseDate?.toInstant()?.toString()]
            }
            [id: u.id, fullName: u.fullName, realm: realm != null, admin: realm?.admin == true, tokens: tokens]
        }
        [version: server.version, timezone: TimeZone.default.ID, now: Emu.isoNow(), today: Emu.today().toString(),
         users: users]
    }

    Map memory() {
        // Heap left by the last full collection (what survived it), read per pool so that
        // allocations made after the collection do not count. Unloaded classes free their
        // remains over several collections: collect until stable.
        def heapPools = ManagementFactory.memoryPoolMXBeans.findAll {
            it.type == java.lang.management.MemoryType.HEAP && it.collectionUsage != null
        }
        long last = Long.MAX_VALUE
        long used = 0
        for (int i = 0; i < 8; i++) {
            System.gc()
            used = heapPools.sum { it.collectionUsage.used } as long
            if (last - used < 64 * 1024) { break }
            last = used
        }
        def cl = ManagementFactory.classLoadingMXBean
        long meta = ManagementFactory.memoryPoolMXBeans.findAll { it.name == 'Metaspace' }.sum { it.usage.used } ?: 0
        [heap_live: liveHeap(), heap_used: used, metaspace_used: meta, loaded_classes: cl.loadedClassCount,
         unloaded_classes: cl.unloadedClassCount, total_loaded_classes: cl.totalLoadedClassCount]
    }

    /** Bytes of reachable objects, from the class histogram (as jcmd GC.class_histogram). */
    static long liveHeap() {
        def server = ManagementFactory.platformMBeanServer
        def name = new javax.management.ObjectName('com.sun.management:type=DiagnosticCommand')
        String histo = server.invoke(name, 'gcClassHistogram', [[] as String[]] as Object[],
                [String[].class.name] as String[]) as String
        def total = histo.readLines().find { it.trim().startsWith('Total') }
        total ? total.trim().split(/\s+/)[2] as long : -1L
    }

    Resp ok(Object o) { new Resp(contentType: 'application/json;charset=UTF-8').text(Emu.toJson(o)) }

    Resp error(int status, String message) {
        new Resp(status: status, contentType: 'application/json;charset=UTF-8').text(Emu.toJson([error: message]))
    }
}
