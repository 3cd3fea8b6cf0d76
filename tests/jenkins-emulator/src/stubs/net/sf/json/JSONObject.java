package net.sf.json;

import java.util.HashMap;

/** Minimal stub of json-lib's JSONObject, enough for ApiTokenStore.reconfigure. */
public class JSONObject extends HashMap<String, Object> {
    public static JSONObject fromObject(java.util.Map<String, ?> m) {
        JSONObject o = new JSONObject();
        o.putAll(m);
        return o;
    }
    public String getString(String key) {
        Object v = get(key);
        if (v == null) { throw new IllegalArgumentException("JSONObject[\"" + key + "\"] not found."); }
        return v.toString();
    }
    public String optString(String key) { Object v = get(key); return v == null ? "" : v.toString(); }
}
