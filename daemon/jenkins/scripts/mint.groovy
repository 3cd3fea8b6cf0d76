// jenkins-token-rotator: mint one API token per item. Constant text: the only input
// is the base64 JSON literal below, substituted by the daemon (DESIGN §1.4).
// Input:  {"variant": "expiring"|"helpers"|"store",
//          "items": [{"user": String, "name": String, "lifetime_ms": long}]}
// The expiry is computed on Jenkins' clock (its now + lifetime_ms), so a controller whose
// clock is ahead of the daemon's still gets tokens that live lifetime_ms.
// Output: one "JTR-TOKEN:<index>:<plain value>" line per minted token, then one
//         "JTR-RESULT:<base64 JSON>" line with, per item, {index, uuid} or
//         {index, error, message}, plus Jenkins' version, now and zone.
// Java 8 APIs only: the "helpers" and "store" variants run on old controllers.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.User
import java.time.Instant
import java.time.LocalDate
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import jenkins.model.Jenkins
import jenkins.security.ApiTokenProperty

def input = new JsonSlurper().parseText(new String(Base64.getDecoder().decode('@@PAYLOAD@@'), 'UTF-8'))
def zone = ZoneId.systemDefault()
long nowMillis = System.currentTimeMillis()
def results = []
input.items.eachWithIndex { item, i ->
    def r = [index: i]
    try {
        def user = User.getById((String) item.user, false)
        if (user == null) {
            r.error = 'unknown_user'
            r.message = 'no such user'
        } else {
            def prop = user.getProperty(ApiTokenProperty.class)
            if (prop == null) {
                r.error = 'no_token_property'
                r.message = 'the user has no API token property'
            } else if (input.variant == 'expiring') {
                // Jenkins' expiry is a local day, valid through its end: take the day
                // that holds the last millisecond before the target (Jenkins' now plus
                // the lifetime), so the token lives until the target and at most one day
                // more (a target at midnight ends right there, not a day later).
                def target = Instant.ofEpochMilli(nowMillis + (long) item.lifetime_ms)
                LocalDate day = target.minusMillis(1).atZone(zone).toLocalDate()
                def t = prop.generateNewToken((String) item.name, day)
                def end = day.plusDays(1).atStartOfDay(zone)
                r.uuid = t.tokenUuid
                r.jenkins_expires_ms = end.toInstant().toEpochMilli()
                // RFC 3339 with seconds (OffsetDateTime.toString drops ":00").
                r.jenkins_expires = end.format(DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ssXXX"))
                out.println('JTR-TOKEN:' + i + ':' + t.plainValue)
            } else if (input.variant == 'helpers') {
                def t = prop.generateNewToken((String) item.name)
                r.uuid = t.tokenUuid
                out.println('JTR-TOKEN:' + i + ':' + t.plainValue)
            } else {
                def t = prop.tokenStore.generateNewToken((String) item.name)
                // Before 2.260 the store does not save the user: without this the
                // token is gone after a restart. A failed save takes the token back, so
                // an item that reports an error leaves no token behind.
                try {
                    user.save()
                } catch (Throwable e) {
                    prop.tokenStore.revokeToken(t.tokenUuid)
                    throw e
                }
                r.uuid = t.tokenUuid
                out.println('JTR-TOKEN:' + i + ':' + t.plainValue)
            }
        }
    } catch (Throwable e) {
        r.error = 'exception'
        r.message = e.getClass().getName() + ': ' + e.getMessage()
    }
    results << r
}
def doc = [version: Jenkins.VERSION, now_ms: nowMillis, zone: zone.getId(), items: results]
out.println('JTR-RESULT:' + Base64.getEncoder().encodeToString(JsonOutput.toJson(doc).getBytes('UTF-8')))
return null
