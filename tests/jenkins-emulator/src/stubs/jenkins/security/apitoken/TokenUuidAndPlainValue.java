//#if V>=2.260
package jenkins.security.apitoken;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;

/** Stub of jenkins.security.apitoken.TokenUuidAndPlainValue (top-level since 2.260). */
public class TokenUuidAndPlainValue {
    public final String tokenUuid;
    public final String plainValue;
//#if V>=2.548
    public final String expirationDate;
    public final boolean aboutToExpire;

    public TokenUuidAndPlainValue(String tokenUuid, String plainValue, LocalDate expirationDate, boolean aboutToExpire) {
        this.tokenUuid = tokenUuid;
        this.plainValue = plainValue;
        this.expirationDate = expirationDate == null ? "Never" : expirationDate.format(DateTimeFormatter.ofPattern("E, L d u"));
        this.aboutToExpire = aboutToExpire;
    }
//#else

    public TokenUuidAndPlainValue(String tokenUuid, String plainValue) {
        this.tokenUuid = tokenUuid;
        this.plainValue = plainValue;
    }
//#endif
}
//#endif
