// jenkins-token-rotator: find which API token of a user has a given hash. Read-only.
// Constant text: the only input is the base64 JSON literal below (DESIGN §1.4).
// The token value itself never travels: the daemon sends the SHA-256 that Jenkins stores
// (reference §3.4: of the 32 hex after "11", or of a legacy token as a whole), and
// HashedToken.match(byte[]) compares it in constant time, as findMatchingToken does.
// Input:  {"user": String, "hash": 64 lowercase hex, "legacy": boolean}
// Output: one "JTR-RESULT:<base64 JSON>" line: {version, now_ms, zone, user,
//         matches: [{uuid, name}]} or {..., error, message}. Java 8 APIs only.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.User
import java.time.ZoneId
import jenkins.model.Jenkins
import jenkins.security.ApiTokenProperty

def input = new JsonSlurper().parseText(new String(Base64.getDecoder().decode('@@PAYLOAD@@'), 'UTF-8'))
def r = [version: Jenkins.VERSION, now_ms: System.currentTimeMillis(),
         zone: ZoneId.systemDefault().getId(), user: input.user]
try {
    String hex = (String) input.hash
    if (hex == null || !(hex ==~ /[0-9a-f]{64}/)) {
        throw new IllegalArgumentException('hash is not 64 lowercase hex')
    }
    byte[] hash = new byte[32]
    for (int i = 0; i < 32; i++) {
        hash[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16)
    }
    def user = User.getById((String) input.user, false)
    if (user == null) {
        r.error = 'unknown_user'
        r.message = 'no such user'
    } else {
        def prop = user.getProperty(ApiTokenProperty.class)
        if (prop == null) {
            r.error = 'no_token_property'
            r.message = 'the user has no API token property'
        } else {
            def matches = []
            for (t in prop.getTokenStore().getTokenListSortedByName()) {
                if (t.isLegacy() == (input.legacy == true) && t.match(hash)) {
                    matches << [uuid: t.getUuid(), name: t.getName()]
                }
            }
            r.matches = matches
        }
    }
} catch (Throwable e) {
    r.error = 'exception'
    r.message = e.getClass().getName() + ': ' + e.getMessage()
}
out.println('JTR-RESULT:' + Base64.getEncoder().encodeToString(JsonOutput.toJson(r).getBytes('UTF-8')))
return null
