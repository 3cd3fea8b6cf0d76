// jenkins-token-rotator: revoke API tokens by uuid. Constant text: the only input is
// the base64 JSON literal below (DESIGN §1.4).
// Input:  {"variant": "helpers"|"store", "items": [{"user": String, "uuid": String}]}
// Output: one "JTR-RESULT:<base64 JSON>" line: per item {index, outcome: "revoked" |
//         "not_found"} or {index, error, message}; plus version, now and zone.
// Java 8 APIs only.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.User
import java.time.ZoneId
import jenkins.model.Jenkins
import jenkins.security.ApiTokenProperty

def input = new JsonSlurper().parseText(new String(Base64.getDecoder().decode('@@PAYLOAD@@'), 'UTF-8'))
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
            def uuid = (String) item.uuid
            def known = prop != null && prop.getTokenStore().getTokenListSortedByName().any { it.getUuid() == uuid }
            if (!known) {
                r.outcome = 'not_found'
            } else if (input.variant == 'helpers') {
                // Removes the token, its usage statistics, and saves the user.
                prop.revokeToken(uuid)
                r.outcome = 'revoked'
            } else {
                prop.getTokenStore().revokeToken(uuid)
                def stats = prop.getTokenStats()
                if (stats != null) {
                    stats.removeId(uuid)
                }
                user.save()
                r.outcome = 'revoked'
            }
        }
    } catch (Throwable e) {
        r.error = 'exception'
        r.message = e.getClass().getName() + ': ' + e.getMessage()
    }
    results << r
}
def doc = [version: Jenkins.VERSION, now_ms: System.currentTimeMillis(), zone: ZoneId.systemDefault().getId(), items: results]
out.println('JTR-RESULT:' + Base64.getEncoder().encodeToString(JsonOutput.toJson(doc).getBytes('UTF-8')))
return null
