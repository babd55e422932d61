/* See addrclass.h: which class an IPv4 or IPv6 address belongs to (the
 * tables the URL policy refuses by), and a host read as a numeric address
 * the way the resolver reads it. */
#include "common/addrclass.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>

/* A host name or address literal longer than this is no address. */
#define HOST_MAX 256

/* ---- address classes ---- */

const char *rv_addr_class_v4(const struct in_addr *a)
{
    uint32_t v = ntohl(a->s_addr);
    static const struct {
        uint32_t net, mask;
        const char *klass;
    } nets[] = {
        {0x00000000, 0xff000000, "unspecified"},   /* 0.0.0.0/8 */
        {0x0a000000, 0xff000000, "private"},       /* 10.0.0.0/8 */
        {0x64400000, 0xffc00000, "CGNAT"},         /* 100.64.0.0/10 */
        {0x7f000000, 0xff000000, "loopback"},      /* 127.0.0.0/8 */
        {0xa9fe0000, 0xffff0000, "link-local"},    /* 169.254.0.0/16 */
        {0xac100000, 0xfff00000, "private"},       /* 172.16.0.0/12 */
        {0xc0000000, 0xffffff00, "reserved"},      /* 192.0.0.0/24 */
        {0xc0000200, 0xffffff00, "documentation"}, /* 192.0.2.0/24 */
        {0xc0586300, 0xffffff00, "reserved"},      /* 192.88.99.0/24 */
        {0xc0a80000, 0xffff0000, "private"},       /* 192.168.0.0/16 */
        {0xc6120000, 0xfffe0000, "reserved"},      /* 198.18.0.0/15 */
        {0xc6336400, 0xffffff00, "documentation"}, /* 198.51.100.0/24 */
        {0xcb007100, 0xffffff00, "documentation"}, /* 203.0.113.0/24 */
        {0xe0000000, 0xf0000000, "multicast"},     /* 224.0.0.0/4 */
        {0xf0000000, 0xf0000000, "reserved"},      /* 240.0.0.0/4 */
    };
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if ((v & nets[i].mask) == nets[i].net)
            return nets[i].klass;
    return NULL;
}

/* The IPv4 address in b[at..at+3] judged on its own. */
static const char *embedded_v4(const uint8_t *b, int at)
{
    struct in_addr v4;
    memcpy(&v4.s_addr, b + at, 4);
    return rv_addr_class_v4(&v4);
}

const char *rv_addr_class_v6(const struct in6_addr *a)
{
    const uint8_t *b = a->s6_addr;
    static const uint8_t zero[16];
    if (memcmp(b, zero, 16) == 0)
        return "unspecified";
    if (memcmp(b, zero, 15) == 0 && b[15] == 1)
        return "loopback";
    /* ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT) reach the IPv4
     * address inside. */
    if ((memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) ||
        (memcmp(b, zero, 8) == 0 && b[8] == 0xff && b[9] == 0xff &&
         b[10] == 0 && b[11] == 0))
        return embedded_v4(b, 12);
    /* ::a.b.c.d, the deprecated compatible form: nothing public uses it. */
    if (memcmp(b, zero, 12) == 0)
        return embedded_v4(b, 12) ? embedded_v4(b, 12) : "reserved";
    /* 64:ff9b::/96, NAT64: the translator reaches the IPv4 inside. */
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(b, nat64, 12) == 0)
        return embedded_v4(b, 12);
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
        b[4] == 0 && b[5] == 1)
        return "private"; /* 64:ff9b:1::/48, local-use NAT64 */
    if (b[0] == 0x20 && b[1] == 0x02)
        return embedded_v4(b, 2); /* 2002::/16, 6to4 */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
        return "reserved"; /* 2001::/32, Teredo: a tunnel to anywhere */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return "documentation"; /* 2001:db8::/32 */
    if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0)
        return "reserved"; /* 100::/64, discard */
    if ((b[0] & 0xfe) == 0xfc)
        return "unique-local"; /* fc00::/7 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local"; /* fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return "private"; /* fec0::/10, the old site-local */
    if (b[0] == 0xff)
        return "multicast";
    return NULL;
}

int rv_host_parse_addr(const char *host, struct in_addr *v4,
                       struct in6_addr *v6)
{
    char buf[HOST_MAX];
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n >= sizeof(buf))
        return 0;
    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']')
            return 0;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        memcpy(buf, host, n + 1);
    }
    if (strchr(buf, ':'))
        return inet_pton(AF_INET6, buf, v6) == 1 ? 6 : 0;
    /* inet_aton reads what the resolver reads as a number (getaddrinfo
     * tries it before DNS): 1 to 4 parts, each decimal, 0x hex or 0
     * octal. It stops at white space, which no host may hold anyway. */
    for (const char *p = buf; *p; p++)
        if (!isxdigit((unsigned char)*p) && *p != '.' && *p != 'x' &&
            *p != 'X')
            return 0;
    return inet_aton(buf, v4) ? 4 : 0;
}
