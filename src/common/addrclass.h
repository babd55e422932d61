/*
 * Address classes: whether an IPv4 or IPv6 address is public, and if not
 * what it is (loopback, private, link-local, ...); and a host as the
 * resolver reads it when it is written as an address. The URL policy
 * (urlpolicy.h) refuses remotes by these classes, on the URL and on every
 * address a name resolves to.
 */
#ifndef REPOVIEW_COMMON_ADDRCLASS_H
#define REPOVIEW_COMMON_ADDRCLASS_H

#include <netinet/in.h>

/* The class of an address that is not public ("loopback", "private",
 * "link-local", "unique-local", "CGNAT", "multicast", "unspecified",
 * "reserved", "documentation"), or NULL for a public one. IPv4-mapped,
 * IPv4-compatible, NAT64 and 6to4 IPv6 addresses are judged by the IPv4
 * address inside. Static strings. */
const char *rv_addr_class_v4(const struct in_addr *a);
const char *rv_addr_class_v6(const struct in6_addr *a);

/* Parses a host as the resolver parses a numeric address: IPv4 in
 * inet_aton's forms (decimal, hex, octal, 1 to 4 parts), or an IPv6
 * literal with or without brackets. 4 or 6 with *v4 or *v6 set, or 0 for a
 * name. */
int rv_host_parse_addr(const char *host, struct in_addr *v4,
                       struct in6_addr *v6);

#endif
