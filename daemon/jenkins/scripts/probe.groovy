// jenkins-token-rotator: probe. Read-only: reports the version, the clock, the zone and
// which token APIs exist, found by reflection (DESIGN §2.3). Java 8 APIs only.
// Input: one base64 JSON document {"nonce": "..."}; output: one JTR-RESULT line.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.nio.charset.StandardCharsets
import java.time.Instant
import java.time.LocalDate
import java.time.OffsetDateTime
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import java.util.Base64
import jenkins.model.Jenkins

Class findClass(String name) {
  try {
    return Class.forName(name, false, Jenkins.class.getClassLoader())
  } catch (ClassNotFoundException e) {
    return null
  }
}

boolean hasMethod(Class type, String name, Class[] parameters) {
  if (type == null) {
    return false
  }
  try {
    type.getMethod(name, parameters)
    return true
  } catch (NoSuchMethodException e) {
    return false
  }
}

def input = new JsonSlurper().parseText(
    new String(Base64.getDecoder().decode('@@PAYLOAD@@'), StandardCharsets.UTF_8))

Class property = findClass('jenkins.security.ApiTokenProperty')
Class configuration = findClass('jenkins.security.apitoken.ApiTokenPropertyConfiguration')
Boolean usageStatistics = null
if (hasMethod(configuration, 'get', new Class[0])
    && hasMethod(configuration, 'isUsageStatisticsEnabled', new Class[0])) {
  Object instance = configuration.getMethod('get').invoke(null)
  if (instance != null) {
    usageStatistics = (Boolean) configuration.getMethod('isUsageStatisticsEnabled').invoke(instance)
  }
}

ZoneId zone = ZoneId.systemDefault()
long nowMillis = System.currentTimeMillis()
def result = [
    nonce           : input.nonce,
    version         : Jenkins.VERSION,
    now_millis      : nowMillis,
    now             : OffsetDateTime.ofInstant(Instant.ofEpochMilli(nowMillis), zone)
                          .format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
    zone            : zone.getId(),
    expiring_tokens : hasMethod(property, 'generateNewToken', [String, LocalDate] as Class[]),
    helpers         : hasMethod(property, 'generateNewToken', [String] as Class[])
                          && hasMethod(property, 'revokeToken', [String] as Class[]),
    token_store     : findClass('jenkins.security.apitoken.ApiTokenStore') != null,
    usage_statistics: usageStatistics,
    administer      : Jenkins.get().hasPermission(Jenkins.ADMINISTER),
]
println('JTR-RESULT:' + Base64.getEncoder().encodeToString(
    JsonOutput.toJson(result).getBytes(StandardCharsets.UTF_8)))
