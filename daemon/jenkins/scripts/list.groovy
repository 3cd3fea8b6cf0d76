// jenkins-token-rotator: list the API tokens of each user. Constant text: the only
// input is the base64 JSON literal below (DESIGN §1.4).
// Input:  {"users": [String]}
// Output: one "JTR-RESULT:<base64 JSON>" line: per user {index, user, tokens: [{uuid,
//         name, created_ms, expiration (yyyy-MM-dd or null), expired, use_counter,
//         last_use_ms, legacy}]} or {index, user, error, message}; plus version, now,
//         zone and whether usage statistics are on. Java 8 APIs only.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.User
import java.time.LocalDate
import java.time.ZoneId
import jenkins.model.Jenkins
import jenkins.security.ApiTokenProperty

def input = new JsonSlurper().parseText(new String(Base64.getDecoder().decode('@@PAYLOAD@@'), 'UTF-8'))
def zone = ZoneId.systemDefault()
def stats_on = null
try {
    def cls = Class.forName('jenkins.security.apitoken.ApiTokenPropertyConfiguration', true, Jenkins.class.getClassLoader())
    stats_on = cls.getMethod('get').invoke(null).isUsageStatisticsEnabled()
} catch (Throwable e) {
    stats_on = null
}
def results = []
input.users.eachWithIndex { name, i ->
    def r = [index: i, user: name]
    try {
        def user = User.getById((String) name, false)
        if (user == null) {
            r.error = 'unknown_user'
            r.message = 'no such user'
        } else {
            def prop = user.getProperty(ApiTokenProperty.class)
            if (prop == null) {
                r.error = 'no_token_property'
                r.message = 'the user has no API token property'
            } else {
                def stats = prop.getTokenStats()
                def tokens = []
                for (t in prop.getTokenStore().getTokenListSortedByName()) {
                    // getExpirationDate exists from 2.548 on.
                    def expiration = t.metaClass.respondsTo(t, 'getExpirationDate') ? t.getExpirationDate() : null
                    def s = stats == null ? null : stats.findTokenStatsById(t.getUuid())
                    def created = t.getCreationDate()
                    def lastUse = s == null ? null : s.getLastUseDate()
                    tokens << [uuid       : t.getUuid(), name: t.getName(),
                               created_ms : created == null ? null : created.getTime(),
                               expiration : expiration == null ? null : expiration.toString(),
                               expired    : expiration != null && t.isExpired(),
                               use_counter: s == null ? 0 : s.getUseCounter(),
                               last_use_ms: lastUse == null ? null : lastUse.getTime(),
                               legacy     : t.isLegacy()]
                }
                r.tokens = tokens
            }
        }
    } catch (Throwable e) {
        r.error = 'exception'
        r.message = e.getClass().getName() + ': ' + e.getMessage()
    }
    results << r
}
def doc = [version: Jenkins.VERSION, now_ms: System.currentTimeMillis(), zone: zone.getId(),
           usage_statistics: stats_on, users: results]
out.println('JTR-RESULT:' + Base64.getEncoder().encodeToString(JsonOutput.toJson(doc).getBytes('UTF-8')))
return null
