package emu

import emu.core.Emu
import hudson.model.User
import java.time.LocalDate
import java.time.format.DateTimeFormatter
import java.time.format.FormatStyle
import jenkins.security.ApiTokenProperty

/**
 * /user/ID/descriptorByName/jenkins.security.ApiTokenProperty/METHOD (reference §4): the
 * @RequirePOST web methods with their permission rules and JSON envelopes.
 */
class TokenRest {
    Server server

    Resp handle(Req req, String userId, String method) {
        User u = User.getById(userId, false)
        if (u == null) { return server.notFound() }
        Set<String> known = ['generateNewToken', 'revoke', 'rename'] as Set
        if (server.tier >= 2260) { known += ['revokeAll', 'revokeAllExcept', 'addFixedToken'] }
        if (!(method in known)) { return server.notFound() }
        if (req.method != 'POST') {
            Resp r = new Resp(status: 405, contentType: 'text/html;charset=UTF-8')
            r.headers['Allow'] = 'POST'
            return r.text('<!DOCTYPE html><html><body><h1>This URL requires POST</h1></body></html>')
        }
        boolean self = req.user.equalsIgnoreCase(u.id)
        boolean mayManage = self || server.isAdmin(req.user)
        ApiTokenProperty p = u.getProperty(ApiTokenProperty)
        switch (method) {
            case 'generateNewToken':
                if (!self) { return new Resp(status: 403, contentType: null) }
                return generate(req, u, p)
            case 'addFixedToken':
                if (!self) { return new Resp(status: 403, contentType: null) }
                return addFixed(req, u, p)
        }
        if (!mayManage) { return server.accessDenied(req.user) }
        String uuid = req.param('tokenUuid')
        switch (method) {
            case 'revoke':
                if (!uuid?.trim()) { return Server.containerError(400, 'The tokenUuid cannot be empty') }
                def t = p.tokenStore.revokeToken(uuid)
                if (t != null) {
                    p.tokenStats.removeId(t.uuid)
                    u.save()
                }
                return new Resp(contentType: null)
            case 'rename':
                String name = req.param('newName')
                if (!name?.trim()) { return envelope([status: 'error', message: 'The name cannot be empty']) }
                if (!uuid?.trim()) { return envelope([status: 'error', message: 'The tokenUuid cannot be empty']) }
                if (!p.tokenStore.renameToken(uuid, name)) {
                    return envelope([status: 'error', message: 'No token found, try refreshing the page'])
                }
                u.save()
                return envelope([status: 'ok'])
            case 'revokeAll':
                p.revokeAllTokens()
                return new Resp(contentType: null)
            case 'revokeAllExcept':
                p.revokeAllTokensExceptOne(uuid ?: '')
                return new Resp(contentType: null)
        }
        server.notFound()
    }

    Resp generate(Req req, User u, ApiTokenProperty p) {
        String name = req.param('newTokenName')
        if (!name?.trim()) { name = 'Token created on ' + java.time.OffsetDateTime.now(Emu.clock()).toString() }
        if (server.tier >= 2548) {
            LocalDate exp = expiration(req)
            if (exp != null && exp.isBefore(Emu.today())) {
                return envelope([status: 'error', message: 'Expiration date is in the past.'])
            }
            def r = p.generateNewToken(name, exp)
            return envelope([status: 'ok', data: [tokenUuid: r.tokenUuid, tokenName: name, tokenValue: r.plainValue,
                    expirationDate: exp == null ? 'never' : exp.format(DateTimeFormatter.ofLocalizedDate(FormatStyle.SHORT)),
                    aboutToExpire: r.aboutToExpire]])
        }
        def r = p.tokenStore.generateNewToken(name)
        u.save()
        envelope([status: 'ok', data: [tokenUuid: r.tokenUuid, tokenName: name, tokenValue: r.plainValue]])
    }

    Resp addFixed(Req req, User u, ApiTokenProperty p) {
        String name = req.param('newTokenName')
        if (!name?.trim()) { name = 'Token created on ' + java.time.OffsetDateTime.now(Emu.clock()).toString() }
        String value = req.param('newTokenPlainValue') ?: ''
        String uuid
        try {
            uuid = server.tier >= 2548 ? p.addFixedNewToken(name, value, expiration(req)) : p.addFixedNewToken(name, value)
        } catch (IllegalArgumentException e) {
            return server.oops(500)
        }
        envelope([status: 'ok', data: [tokenUuid: uuid, tokenName: name]])
    }

    /** expirationDuration: ""/never = none, custom = tokenExpiration (yyyy-MM-dd), or days. */
    LocalDate expiration(Req req) {
        String d = req.param('expirationDuration')
        if (d == null || d == '' || d == 'never') { return null }
        if (d == 'custom') { return LocalDate.parse(req.param('tokenExpiration') ?: '') }
        Emu.today().plusDays(Integer.parseInt(d))
    }

    Resp envelope(Map m) {
        new Resp(contentType: 'application/json; charset=UTF-8').text(Emu.toJson(m))
    }
}
