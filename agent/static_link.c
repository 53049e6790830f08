/* static_link: what the fully static axion-agent (-DAXION_STATIC=ON) links in place of the
 * libraries that Debian ships no usable static archive of. Only that binary links this file.
 *
 * Debian's libcurl.a and librdkafka.a are built with every optional protocol and mechanism,
 * and so they reference libraries the agent never uses:
 *   - MIT Kerberos GSS-API (curl: SPNEGO/Kerberos authentication): no static archive exists
 *     (libkrb5-dev ships only shared objects);
 *   - Cyrus SASL (librdkafka: sasl.mechanisms=GSSAPI): libsasl2.a has its plugins built in, and
 *     they need Berkeley DB, MariaDB, PostgreSQL and Kerberos;
 *   - librtmp and OpenLDAP (curl: rtmp:// and ldap:// URLs): both are built against GnuTLS,
 *     whose static archive needs p11-kit, which has none.
 * The agent never runs these paths: curl speaks only http:// over the Docker socket
 * (drivers/docker sets CURLOPT_PROTOCOLS_STR "http" and never asks for Negotiate
 * authentication), and the Kafka channel's kafka.security is plaintext or ssl, never SASL. So
 * the functions below are the libraries' public API (prototypes from their own headers)
 * answering "not available": a call that cannot happen fails cleanly if it ever did.
 *
 * Names: a static glibc resolves host names itself only with its built-in "files" and "dns"
 * services; other services named in /etc/nsswitch.conf (myhostname, resolve, mdns) would have
 * to be loaded from the host's glibc, which must then be the very version we linked. So the
 * static binary fixes its lookups to /etc/hosts then DNS (/etc/resolv.conf), whatever the
 * host's nsswitch.conf says; the same for users and groups (/etc/passwd, /etc/group).
 * docs/OPERATIONS.md says so. gRPC resolves with c-ares (its default), which reads
 * /etc/hosts and /etc/resolv.conf itself; librdkafka uses getaddrinfo(3); curl resolves
 * nothing (a unix socket). */
#include <gssapi/gssapi.h>
#include <lber.h>
#include <ldap.h>
#include <librtmp/rtmp.h>
#include <nss.h>
#include <openldap.h>
#include <sasl/sasl.h>
#include <stddef.h>

/* --- name service: files then dns, never a module loaded from the host --------------------- */

__attribute__((constructor)) static void static_link_nss(void)
{
    __nss_configure_lookup("hosts", "files dns");
    __nss_configure_lookup("passwd", "files");
    __nss_configure_lookup("group", "files");
}

/* --- GSS-API (MIT Kerberos), referenced by curl's SPNEGO and Kerberos code ----------------- */

static gss_OID_desc no_oid = {0, NULL};
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &no_oid;

static OM_uint32 gss_unavailable(OM_uint32 *minor)
{
    if (minor)
        *minor = 0;
    return GSS_S_UNAVAILABLE;
}

static OM_uint32 gss_nothing_to_free(OM_uint32 *minor)
{
    if (minor)
        *minor = 0;
    return GSS_S_COMPLETE;
}

OM_uint32 gss_init_sec_context(OM_uint32 *minor, gss_cred_id_t cred, gss_ctx_id_t *ctx,
                               gss_name_t target, gss_OID mech, OM_uint32 req_flags,
                               OM_uint32 time_req, gss_channel_bindings_t bindings,
                               gss_buffer_t input, gss_OID *actual_mech, gss_buffer_t output,
                               OM_uint32 *ret_flags, OM_uint32 *time_rec)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    return gss_unavailable(minor);
}

OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t input, gss_OID type, gss_name_t *ret)
{
    return gss_unavailable(minor);
}

OM_uint32 gss_display_name(OM_uint32 *minor, gss_name_t name, gss_buffer_t output,
                           gss_OID *ret_type)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    return gss_unavailable(minor);
}

OM_uint32 gss_display_status(OM_uint32 *minor, OM_uint32 status, int status_type, gss_OID mech,
                             OM_uint32 *message_context, gss_buffer_t output)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    if (message_context)
        *message_context = 0;
    return gss_unavailable(minor);
}

OM_uint32 gss_inquire_context(OM_uint32 *minor, gss_ctx_id_t ctx, gss_name_t *src, gss_name_t *targ,
                              OM_uint32 *lifetime, gss_OID *mech, OM_uint32 *flags,
                              int *locally_initiated, int *open)
{
    return gss_unavailable(minor);
}

OM_uint32 gss_wrap(OM_uint32 *minor, gss_ctx_id_t ctx, int conf_req, gss_qop_t qop,
                   gss_buffer_t input, int *conf_state, gss_buffer_t output)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    return gss_unavailable(minor);
}

OM_uint32 gss_unwrap(OM_uint32 *minor, gss_ctx_id_t ctx, gss_buffer_t input, gss_buffer_t output,
                     int *conf_state, gss_qop_t *qop)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    return gss_unavailable(minor);
}

/* Nothing above ever hands out a context, name or buffer: there is nothing to release. */
OM_uint32 gss_delete_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t output)
{
    if (output)
        *output = (gss_buffer_desc){0, NULL};
    return gss_nothing_to_free(minor);
}

OM_uint32 gss_release_name(OM_uint32 *minor, gss_name_t *name)
{
    return gss_nothing_to_free(minor);
}

OM_uint32 gss_release_buffer(OM_uint32 *minor, gss_buffer_t buffer)
{
    return gss_nothing_to_free(minor);
}

/* --- Cyrus SASL, referenced by librdkafka's GSSAPI mechanism -------------------------------- */

/* librdkafka calls this once at its global init, whatever the config: no plugins is fine. */
int sasl_client_init(const sasl_callback_t *callbacks)
{
    return SASL_OK;
}

int sasl_client_new(const char *service, const char *server_fqdn, const char *iplocalport,
                    const char *ipremoteport, const sasl_callback_t *prompt_supp, unsigned flags,
                    sasl_conn_t **ret)
{
    return SASL_NOMECH;
}

int sasl_client_start(sasl_conn_t *conn, const char *mechlist, sasl_interact_t **prompt_need,
                      const char **clientout, unsigned *clientoutlen, const char **mech)
{
    return SASL_NOMECH;
}

int sasl_client_step(sasl_conn_t *conn, const char *serverin, unsigned serverinlen,
                     sasl_interact_t **prompt_need, const char **clientout, unsigned *clientoutlen)
{
    return SASL_NOMECH;
}

int sasl_listmech(sasl_conn_t *conn, const char *user, const char *prefix, const char *sep,
                  const char *suffix, const char **result, unsigned *plen, int *pcount)
{
    return SASL_NOMECH;
}

int sasl_getprop(sasl_conn_t *conn, int propnum, const void **pvalue)
{
    return SASL_NOMECH;
}

void sasl_dispose(sasl_conn_t **conn)
{
}

const char *sasl_errstring(int saslerr, const char *langlist, const char **outlang)
{
    if (outlang)
        *outlang = "en-us";
    return saslerr == SASL_OK ? "successful result"
                              : "Cyrus SASL is not linked into the static axion-agent";
}

const char *sasl_errdetail(sasl_conn_t *conn)
{
    return "Cyrus SASL is not linked into the static axion-agent";
}

/* --- librtmp, referenced by curl's rtmp:// handler ------------------------------------------ */

RTMP *RTMP_Alloc(void)
{
    return NULL; /* curl: "out of memory" for an rtmp:// URL, which the agent never makes */
}

void RTMP_Init(RTMP *r)
{
}

void RTMP_Free(RTMP *r)
{
}

void RTMP_Close(RTMP *r)
{
}

int RTMP_SetupURL(RTMP *r, char *url)
{
    return 0; /* librtmp's FALSE */
}

void RTMP_SetBufferMS(RTMP *r, int size)
{
}

int RTMP_Connect1(RTMP *r, RTMPPacket *cp)
{
    return 0;
}

int RTMP_ConnectStream(RTMP *r, int seek_time)
{
    return 0;
}

int RTMP_Read(RTMP *r, char *buf, int size)
{
    return -1;
}

int RTMP_Write(RTMP *r, const char *buf, int size)
{
    return -1;
}

/* --- OpenLDAP, referenced by curl's ldap:// handler ----------------------------------------- */

int ldap_pvt_url_scheme2proto(const char *scheme); /* OpenLDAP's private header */

int ldap_pvt_url_scheme2proto(const char *scheme)
{
    return -1;
}

int ldap_url_parse(const char *url, LDAPURLDesc **ret)
{
    return LDAP_URL_ERR_BADSCHEME;
}

void ldap_free_urldesc(LDAPURLDesc *ludp)
{
}

int ldap_init_fd(ber_socket_t fd, int proto, const char *url, LDAP **ret)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_set_option(LDAP *ld, int option, const void *invalue)
{
    return LDAP_OPT_ERROR;
}

int ldap_get_option(LDAP *ld, int option, void *outvalue)
{
    return LDAP_OPT_ERROR;
}

char *ldap_err2string(int err)
{
    return "OpenLDAP is not linked into the static axion-agent";
}

int ldap_start_tls(LDAP *ld, LDAPControl **serverctrls, LDAPControl **clientctrls, int *msgidp)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_sasl_bind(LDAP *ld, const char *dn, const char *mechanism, struct berval *cred,
                   LDAPControl **serverctrls, LDAPControl **clientctrls, int *msgidp)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_search_ext(LDAP *ld, const char *base, int scope, const char *filter, char **attrs,
                    int attrsonly, LDAPControl **serverctrls, LDAPControl **clientctrls,
                    struct timeval *timeout, int sizelimit, int *msgidp)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_result(LDAP *ld, int msgid, int all, struct timeval *timeout, LDAPMessage **ret)
{
    return -1;
}

int ldap_msgtype(LDAPMessage *lm)
{
    return -1;
}

int ldap_parse_result(LDAP *ld, LDAPMessage *res, int *errcodep, char **matcheddnp, char **diagmsgp,
                      char ***referralsp, LDAPControl ***serverctrls, int freeit)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_parse_sasl_bind_result(LDAP *ld, LDAPMessage *res, struct berval **servercredp, int freeit)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_get_dn_ber(LDAP *ld, LDAPMessage *e, BerElement **berout, struct berval *dn)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_get_attribute_ber(LDAP *ld, LDAPMessage *e, BerElement *ber, struct berval *attr,
                           struct berval **vals)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_abandon_ext(LDAP *ld, int msgid, LDAPControl **serverctrls, LDAPControl **clientctrls)
{
    return LDAP_NOT_SUPPORTED;
}

int ldap_unbind_ext(LDAP *ld, LDAPControl **serverctrls, LDAPControl **clientctrls)
{
    return LDAP_SUCCESS;
}

int ldap_msgfree(LDAPMessage *lm)
{
    return -1;
}

void ldap_memfree(void *p)
{
}

void ber_memfree(void *p)
{
}

void ber_memvfree(void **vector)
{
}

void ber_bvfree(struct berval *bv)
{
}

void ber_free(BerElement *ber, int freebuf)
{
}

int ber_sockbuf_add_io(Sockbuf *sb, Sockbuf_IO *sbio, int layer, void *arg)
{
    return -1;
}
