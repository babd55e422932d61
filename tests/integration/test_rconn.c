/*
 * Redis connections (common/rconn.c): URL parsing, the blocking connection
 * (unix socket, TCP, AUTH with a password or an ACL user, SELECT, reconnect
 * with backoff) and the async one on libevent (connect and reconnect
 * reports, exactly one callback per command, NULL for commands lost with
 * the connection, freeing from inside callbacks).
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/rconn.h"
#include "common/util.h"
#include "rvtest.h"

#define PASSWORD "s3cr3tPW"

/* ---- helpers ---- */

/* Runs base in 10 ms slices until *cond is true (if cond is not NULL) or
 * max_ms passed. */
static void loop_until(struct event_base *base, const bool *cond, int max_ms)
{
    int64_t deadline = rv_mono_ms() + max_ms;
    while (!(cond && *cond) && rv_mono_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

/* A raw hiredis connection to the test server's socket (no AUTH). */
static redisContext *raw_connect(struct rvt_redis *r)
{
    redisContext *c = redisConnectUnix(r->sock);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* The string reply of a command on rs, copied into buf ("(nil)", "(error)
 * ...", "(null)" for other outcomes). */
static const char *sync_str(struct rv_rsync *rs, char *buf, size_t size,
                            const char *fmt, const char *arg)
{
    redisReply *rep = rv_rsync_command(rs, fmt, arg);
    if (!rep)
        snprintf(buf, size, "(null)");
    else if (rep->type == REDIS_REPLY_STRING ||
             rep->type == REDIS_REPLY_STATUS)
        snprintf(buf, size, "%s", rep->str);
    else if (rep->type == REDIS_REPLY_ERROR)
        snprintf(buf, size, "(error) %s", rep->str);
    else if (rep->type == REDIS_REPLY_NIL)
        snprintf(buf, size, "(nil)");
    else
        snprintf(buf, size, "(type %d)", rep->type);
    if (rep)
        freeReplyObject(rep);
    return buf;
}

/* ---- URL parsing ---- */

struct good_url {
    const char *url;
    bool is_unix;
    const char *host;
    int port;
    const char *path;
    const char *user;
    const char *pass;
    int db;
};

static void test_parse_url_reads_every_documented_form(void)
{
    static const struct good_url cases[] = {
        {"redis://127.0.0.1", false, "127.0.0.1", 6379, "", "", "", 0},
        {"redis://localhost:6380/2", false, "localhost", 6380, "", "", "", 2},
        {"redis://redis.example.com:1/15", false, "redis.example.com", 1, "",
         "", "", 15},
        {"redis://h:65535/", false, "h", 65535, "", "", "", 0},
        {"redis://:" PASSWORD "@h", false, "h", 6379, "", "", PASSWORD, 0},
        {"redis://" PASSWORD "@h:7000", false, "h", 7000, "", "", PASSWORD,
         0},
        {"redis://alice:" PASSWORD "@h:7000/3", false, "h", 7000, "",
         "alice", PASSWORD, 3},
        {"redis://al%69ce:p%40ss%3Aw%2Frd%25@h", false, "h", 6379, "",
         "alice", "p@ss:w/rd%", 0},
        {"redis://[::1]:6390/1", false, "::1", 6390, "", "", "", 1},
        {"redis://[::1]", false, "::1", 6379, "", "", "", 0},
        {"redis://u:p@[fe80::1]:6379", false, "fe80::1", 6379, "", "u", "p",
         0},
        {"REDIS://Host", false, "Host", 6379, "", "", "", 0},
        {"unix:///tmp/r.sock", true, "", 6379, "/tmp/r.sock", "", "", 0},
        {"unix:///tmp/r.sock?db=3", true, "", 6379, "/tmp/r.sock", "", "", 3},
        {"unix:///run/r.sock?db=4&password=p%26w&user=bob", true, "", 6379,
         "/run/r.sock", "bob", "p&w", 4},
        {"unix:///run/r.sock?password=" PASSWORD, true, "", 6379,
         "/run/r.sock", "", PASSWORD, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct good_url *c = &cases[i];
        struct rv_redis_addr a;
        char err[256] = "untouched";
        int rc = rv_redis_parse_url(c->url, &a, err, sizeof(err));
        if (rc != RV_OK)
            fprintf(stderr, "  %s: %s\n", c->url, err);
        CHECK_INT(rc, RV_OK);
        CHECK_INT(a.is_unix, c->is_unix);
        CHECK_STR(a.host, c->host);
        CHECK_INT(a.port, c->port);
        CHECK_STR(a.path, c->path);
        CHECK_STR(a.user, c->user);
        CHECK_STR(a.pass, c->pass);
        CHECK_INT(a.db, c->db);
    }
}

struct bad_url {
    const char *url;
    const char *says; /* a word the error must contain */
};

static void test_parse_url_refuses_bad_urls_without_showing_the_password(void)
{
    static const struct bad_url cases[] = {
        {"", "empty"},
        {"rediss://:" PASSWORD "@h:6380", "TLS is not supported"},
        {"REDISS://h", "TLS is not supported"},
        {"http://" PASSWORD "@h", "redis://"},
        {"redis://", "no host"},
        {"redis://:" PASSWORD "@", "no host"},
        {"redis://:" PASSWORD "@:6379", "no host"},
        {"redis://:" PASSWORD "@h:0", "1..65535"},
        {"redis://:" PASSWORD "@h:65536", "1..65535"},
        {"redis://:" PASSWORD "@h:-1", "1..65535"},
        {"redis://:" PASSWORD "@h:+80", "1..65535"},
        {"redis://:" PASSWORD "@h:http", "1..65535"},
        {"redis://:" PASSWORD "@h:", "1..65535"},
        {"redis://:" PASSWORD "@h/16", "0..15"},
        {"redis://:" PASSWORD "@h/-1", "0..15"},
        {"redis://:" PASSWORD "@h/x", "0..15"},
        {"redis://:" PASSWORD "@h/1/2", "0..15"},
        {"redis://:" PASSWORD "@h?db=1", "query"},
        {"redis://:" PASSWORD "%zz@h", "password"},
        {"redis://:" PASSWORD "%0@h", "password"},
        {"redis://:" PASSWORD "%00@h", "password"},
        {"redis://alice%:" PASSWORD "@h", "user"},
        {"redis://:" PASSWORD "@[::1", "IPv6"},
        {"redis://:" PASSWORD "@[]:1", "IPv6"},
        {"redis://:" PASSWORD "@[::1]x", "port"},
        {"redis://:" PASSWORD "@[g::1]", "IPv6"},
        {"redis://:" PASSWORD "@h:1:2", "1..65535"},
        {"redis://:" PASSWORD "@h o", "blank"},
        {"redis://:" PASSWORD "@h\n", "control"},
        {"redis://:" PASSWORD "@h!x", "invalid host"},
        {"unix://", "absolute"},
        {"unix://relative.sock", "absolute"},
        {"unix:///", "absolute"},
        {"unix:///tmp/s?db=16", "0..15"},
        {"unix:///tmp/s?db=", "0..15"},
        {"unix:///tmp/s?db", "name=value"},
        {"unix:///tmp/s?password=" PASSWORD "&foo=1", "unknown"},
        {"unix:///tmp/s?password=" PASSWORD "%", "password"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_url *c = &cases[i];
        struct rv_redis_addr a;
        char err[256] = "";
        int rc = rv_redis_parse_url(c->url, &a, err, sizeof(err));
        CHECK_INT(rc, RV_ERR_CONFIG);
        bool says = strstr(err, c->says) != NULL;
        bool leaks = strstr(err, PASSWORD) != NULL;
        if (!says || leaks)
            fprintf(stderr, "  %s: \"%s\"\n", c->url, err);
        CHECK(says);
        CHECK(!leaks);
        CHECK_STR(a.pass, ""); /* no half-parsed credentials */
    }
    struct rv_redis_addr a;
    char err[64];
    CHECK_INT(rv_redis_parse_url(NULL, &a, err, sizeof(err)), RV_ERR_CONFIG);
    char long_path[300] = "unix:///";
    memset(long_path + 8, 'a', 200);
    long_path[208] = '\0';
    CHECK_INT(rv_redis_parse_url(long_path, &a, err, sizeof(err)),
              RV_ERR_CONFIG);
}

/* ---- blocking ---- */

static void test_sync_connects_over_unix_socket(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct rv_rsync rs;
    CHECK_INT(rv_rsync_open(&rs, &r.addr, 2000), RV_OK);
    char buf[128];
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "SET k %s", "unix"), "OK");
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "GET %s", "k"), "unix");
    CHECK_STR(rs.err, "");
    rv_rsync_close(&rs);
    CHECK(rs.ctx == NULL);
    rvt_redis_stop(&r);
}

static void test_sync_connects_over_tcp(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start_tcp(&r, NULL), 0);
    CHECK(r.port > 0);
    struct rv_redis_addr a;
    char err[256];
    CHECK_INT(rv_redis_parse_url(r.tcp_url, &a, err, sizeof(err)), RV_OK);
    struct rv_rsync rs;
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_OK);
    char buf[128];
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "SET k %s", "tcp"), "OK");
    /* The same server, seen through its unix socket. */
    struct rv_rsync us;
    CHECK_INT(rv_rsync_open(&us, &r.addr, 2000), RV_OK);
    CHECK_STR(sync_str(&us, buf, sizeof(buf), "GET %s", "k"), "tcp");
    rv_rsync_close(&us);
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_authenticates_with_requirepass(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, "--requirepass " PASSWORD), 0);
    struct rv_redis_addr a = r.addr;
    struct rv_rsync rs;
    char buf[128];

    /* No password: refused at connect time with Redis's NOAUTH. */
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_ERR_REDIS);
    CHECK(rs.ctx == NULL);
    CHECK(strstr(rs.err, "NOAUTH") != NULL);
    rv_rsync_close(&rs);

    /* A wrong password: a clear error that does not echo it. */
    snprintf(a.pass, sizeof(a.pass), "wrong-%s", "guess");
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_ERR_REDIS);
    CHECK(strstr(rs.err, "AUTH") != NULL);
    CHECK(strstr(rs.err, "WRONGPASS") != NULL);
    CHECK(strstr(rs.err, "wrong-guess") == NULL);
    CHECK(strstr(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "(null)"));
    rv_rsync_close(&rs);

    snprintf(a.pass, sizeof(a.pass), "%s", PASSWORD);
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_OK);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "SET k %s", "v"), "OK");
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "ACL WHOAMI%s", ""), "default");
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_authenticates_as_acl_user(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, "--user alice on '>" PASSWORD
                                  "' '~*' '&*' '+@all'"),
              0);
    struct rv_redis_addr a;
    char err[256], url[600], buf[128];
    snprintf(url, sizeof(url), "unix://%s?user=alice&password=%s", r.sock,
             PASSWORD);
    CHECK_INT(rv_redis_parse_url(url, &a, err, sizeof(err)), RV_OK);
    struct rv_rsync rs;
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_OK);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "ACL WHOAMI%s", ""), "alice");
    rv_rsync_close(&rs);

    /* alice's password is not the default user's. */
    a.user[0] = '\0';
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_ERR_REDIS);
    CHECK(strstr(rs.err, "refused AUTH") != NULL);
    CHECK(strstr(rs.err, PASSWORD) == NULL);
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_select_lands_in_the_database_of_the_url(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct rv_redis_addr a;
    char err[256], url[600], buf[128];
    snprintf(url, sizeof(url), "unix://%s?db=3", r.sock);
    CHECK_INT(rv_redis_parse_url(url, &a, err, sizeof(err)), RV_OK);
    struct rv_rsync rs;
    CHECK_INT(rv_rsync_open(&rs, &a, 2000), RV_OK);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "SET k %s", "in-db-3"), "OK");

    redisContext *raw = raw_connect(&r);
    CHECK(raw != NULL);
    if (raw) {
        redisReply *rep = redisCommand(raw, "GET k");
        CHECK(rep && rep->type == REDIS_REPLY_NIL);
        freeReplyObject(rep);
        rep = redisCommand(raw, "SELECT 3");
        freeReplyObject(rep);
        rep = redisCommand(raw, "GET k");
        CHECK(rep && rep->type == REDIS_REPLY_STRING);
        if (rep && rep->type == REDIS_REPLY_STRING)
            CHECK_STR(rep->str, "in-db-3");
        freeReplyObject(rep);
        redisFree(raw);
    }
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_reconnects_after_redis_restarts(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct rv_rsync rs;
    char buf[128];
    CHECK_INT(rv_rsync_open(&rs, &r.addr, 2000), RV_OK);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "PONG");

    rvt_redis_kill(&r);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "(null)");
    CHECK(rs.ctx == NULL);
    CHECK(strstr(rs.err, "unix:") != NULL); /* names the address */
    /* A failed reconnect starts the backoff; inside it calls fail at once
     * without touching the network. */
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "(null)");
    CHECK(rs.next_try_ms > rv_mono_ms());
    CHECK_INT(rv_rsync_ensure(&rs), RV_ERR_REDIS);
    CHECK(rs.err[0] != '\0');

    CHECK_INT(rvt_redis_restart(&r), 0);
    int64_t start = rv_mono_ms();
    bool back = false;
    while (!back && rv_mono_ms() - start < 8000) {
        redisReply *rep = rv_rsync_command(&rs, "PING");
        back = rep != NULL;
        if (rep)
            freeReplyObject(rep);
        else
            rvt_sleep_ms(20);
    }
    CHECK(back);
    CHECK_STR(rs.err, "");
    CHECK_INT(rs.backoff_ms, 100);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "SET k %s", "again"), "OK");
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_reconnects_at_once_after_the_server_drops_it(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct rv_rsync rs;
    char buf[128];
    CHECK_INT(rv_rsync_open(&rs, &r.addr, 2000), RV_OK);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "CLIENT SETNAME %s", "victim"),
              "OK");
    redisContext *raw = raw_connect(&r);
    CHECK(raw != NULL);
    if (raw) {
        redisReply *rep = redisCommand(raw, "CLIENT KILL TYPE normal");
        CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);
        freeReplyObject(rep);
        redisFree(raw);
    }
    /* The command that meets the closed socket fails; the next one
     * reconnects without waiting for a backoff. */
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "(null)");
    CHECK(strstr(rs.err, "lost") != NULL);
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "PING%s", ""), "PONG");
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

static void test_sync_run_refuses_a_command_that_ran_out_of_memory(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct rv_rsync rs;
    CHECK_INT(rv_rsync_open(&rs, &r.addr, 2000), RV_OK);
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, "PING");
    cmd.failed = 1;
    CHECK(rv_rsync_run(&rs, &cmd) == NULL);
    CHECK_STR(rs.err, "out of memory");
    CHECK(rs.ctx != NULL); /* the connection itself is fine */
    cmd.failed = 0;
    redisReply *rep = rv_rsync_run(&rs, &cmd);
    CHECK(rep && rep->type == REDIS_REPLY_STATUS);
    if (rep)
        freeReplyObject(rep);
    rv_cmd_free(&cmd);
    rv_rsync_close(&rs);
    rvt_redis_stop(&r);
}

/* ---- async ---- */

struct probe {
    struct rv_rasync *ra;
    int ups, downs;
    bool up, down;
    bool free_on_up, free_on_down;
};

struct reply_probe {
    struct probe *p;
    int calls;
    bool done;
    bool got_null;
    int type;
    char str[128];
    bool free_in_callback;
    int run_rc_in_callback; /* what rv_rasync_run answered from inside */
};

static void on_state(struct rv_rasync *ra, bool connected, void *priv)
{
    struct probe *p = priv;
    if (connected) {
        p->ups++;
        p->up = true;
        p->down = false;
        if (p->free_on_up) {
            rv_rasync_free(ra);
            p->ra = NULL;
        }
    } else {
        p->downs++;
        p->down = true;
        p->up = false;
        if (p->free_on_down) {
            rv_rasync_free(ra);
            p->ra = NULL;
        }
    }
}

static void on_reply(struct rv_rasync *ra, redisReply *reply, void *priv)
{
    struct reply_probe *rp = priv;
    rp->calls++;
    rp->done = true;
    rp->got_null = reply == NULL;
    rp->type = reply ? reply->type : -1;
    rp->str[0] = '\0';
    if (reply && reply->str)
        snprintf(rp->str, sizeof(rp->str), "%s", reply->str);
    if (!reply) {
        /* A callback that gets NULL may try again at once: refused, never
         * called back. */
        struct rv_cmd cmd;
        rv_cmd_init(&cmd);
        rv_cmd_add(&cmd, "PING");
        rp->run_rc_in_callback = rv_rasync_run(ra, &cmd, on_reply, rp);
        CHECK_INT(cmd.argc, 0);
    }
    if (rp->free_in_callback) {
        rv_rasync_free(ra);
        if (rp->p)
            rp->p->ra = NULL;
    }
}

static int send_cmd(struct rv_rasync *ra, struct reply_probe *rp,
                    const char *a0, const char *a1, const char *a2)
{
    struct rv_cmd cmd;
    rv_cmd_init(&cmd);
    rv_cmd_add(&cmd, a0);
    if (a1)
        rv_cmd_add(&cmd, a1);
    if (a2)
        rv_cmd_add(&cmd, a2);
    int rc = rv_rasync_run(ra, &cmd, on_reply, rp);
    CHECK_INT(cmd.argc, 0); /* taken over, or freed, either way */
    return rc;
}

static void test_async_reports_connected_and_calls_back_once(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start_tcp(&r, NULL), 0);
    struct event_base *base = event_base_new();
    struct probe p = {0};
    struct rv_redis_addr a;
    char err[256];
    CHECK_INT(rv_redis_parse_url(r.tcp_url, &a, err, sizeof(err)), RV_OK);
    p.ra = rv_rasync_new(base, &a, on_state, &p);
    CHECK(p.ra != NULL);

    /* Not connected yet: refused at once, and no callback ever. */
    struct reply_probe early = {0};
    CHECK(!rv_rasync_connected(p.ra));
    CHECK(rv_rasync_context(p.ra) == NULL);
    CHECK_INT(send_cmd(p.ra, &early, "PING", NULL, NULL), RV_ERR_REDIS);

    loop_until(base, &p.up, 3000);
    CHECK_INT(p.ups, 1);
    CHECK(rv_rasync_connected(p.ra));
    CHECK(rv_rasync_context(p.ra) != NULL);
    CHECK_INT(rv_rasync_reconnects(p.ra), 0);

    struct reply_probe set = {0}, get = {0};
    CHECK_INT(send_cmd(p.ra, &set, "SET", "k", "async"), RV_OK);
    CHECK_INT(send_cmd(p.ra, &get, "GET", "k", NULL), RV_OK);
    loop_until(base, &get.done, 3000);
    loop_until(base, NULL, 100); /* room for a wrong second callback */
    CHECK_INT(set.calls, 1);
    CHECK_INT(get.calls, 1);
    CHECK_STR(get.str, "async");
    CHECK_INT(early.calls, 0);

    struct reply_probe bad = {0};
    CHECK_INT(send_cmd(p.ra, &bad, "NOSUCHCOMMAND", NULL, NULL), RV_OK);
    loop_until(base, &bad.done, 3000);
    CHECK_INT(bad.type, REDIS_REPLY_ERROR); /* errors arrive as replies */
    CHECK(rv_rasync_connected(p.ra));

    rv_rasync_free(p.ra);
    CHECK_INT(p.downs, 0); /* freeing is not a loss to report */
    event_base_free(base);
    rvt_redis_stop(&r);
}

static void test_async_authenticates_and_selects_before_reporting_up(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, "--user alice on '>" PASSWORD
                                  "' '~*' '&*' '+@all'"),
              0);
    struct event_base *base = event_base_new();
    struct rv_redis_addr a;
    char err[256], url[600];
    snprintf(url, sizeof(url), "unix://%s?user=alice&password=%s&db=5",
             r.sock, PASSWORD);
    CHECK_INT(rv_redis_parse_url(url, &a, err, sizeof(err)), RV_OK);

    /* A wrong password never reports up (and keeps retrying quietly). */
    struct rv_redis_addr wrong = a;
    snprintf(wrong.pass, sizeof(wrong.pass), "nope");
    struct probe pw = {0};
    pw.ra = rv_rasync_new(base, &wrong, on_state, &pw);
    loop_until(base, NULL, 500);
    CHECK_INT(pw.ups, 0);
    CHECK(!rv_rasync_connected(pw.ra));
    rv_rasync_free(pw.ra);

    struct probe p = {0};
    p.ra = rv_rasync_new(base, &a, on_state, &p);
    loop_until(base, &p.up, 3000);
    CHECK_INT(p.ups, 1);
    struct reply_probe who = {0}, set = {0};
    CHECK_INT(send_cmd(p.ra, &who, "ACL", "WHOAMI", NULL), RV_OK);
    CHECK_INT(send_cmd(p.ra, &set, "SET", "k", "in-db-5"), RV_OK);
    loop_until(base, &set.done, 3000);
    CHECK_STR(who.str, "alice");

    struct rv_rsync rs;
    struct rv_redis_addr db5 = a;
    CHECK_INT(rv_rsync_open(&rs, &db5, 2000), RV_OK);
    char buf[64];
    CHECK_STR(sync_str(&rs, buf, sizeof(buf), "GET %s", "k"), "in-db-5");
    rv_rsync_close(&rs);

    rv_rasync_free(p.ra);
    event_base_free(base);
    rvt_redis_stop(&r);
}

static void test_async_loses_in_flight_commands_and_reconnects(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct event_base *base = event_base_new();
    struct probe p = {0};
    p.ra = rv_rasync_new(base, &r.addr, on_state, &p);
    loop_until(base, &p.up, 3000);
    CHECK(p.up);

    /* BLPOP blocks on the server, so it is in flight when Redis dies. */
    struct reply_probe blocked = {0};
    CHECK_INT(send_cmd(p.ra, &blocked, "BLPOP", "nothing", "30"), RV_OK);
    loop_until(base, NULL, 100);
    CHECK_INT(blocked.calls, 0);
    rvt_redis_kill(&r);
    loop_until(base, &p.down, 3000);
    loop_until(base, &blocked.done, 1000);
    CHECK_INT(p.downs, 1);
    CHECK_INT(blocked.calls, 1);
    CHECK(blocked.got_null);
    CHECK_INT(blocked.run_rc_in_callback, RV_ERR_REDIS);
    CHECK(!rv_rasync_connected(p.ra));

    struct reply_probe while_down = {0};
    CHECK_INT(send_cmd(p.ra, &while_down, "PING", NULL, NULL), RV_ERR_REDIS);
    loop_until(base, NULL, 400); /* a few failed attempts: backoff grows */
    CHECK_INT(p.ups, 1);

    CHECK_INT(rvt_redis_restart(&r), 0);
    loop_until(base, &p.up, 8000);
    CHECK_INT(p.ups, 2);
    CHECK_INT(rv_rasync_reconnects(p.ra), 1);
    struct reply_probe ping = {0};
    CHECK_INT(send_cmd(p.ra, &ping, "PING", NULL, NULL), RV_OK);
    loop_until(base, &ping.done, 3000);
    CHECK_STR(ping.str, "PONG");
    CHECK_INT(while_down.calls, 0);
    CHECK_INT(blocked.calls, 1);

    rv_rasync_free(p.ra);
    event_base_free(base);
    rvt_redis_stop(&r);
}

static void test_async_free_from_a_reply_callback_fails_the_rest(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct event_base *base = event_base_new();
    struct probe p = {0};
    p.ra = rv_rasync_new(base, &r.addr, on_state, &p);
    loop_until(base, &p.up, 3000);

    struct reply_probe first = {.p = &p, .free_in_callback = true};
    struct reply_probe second = {0};
    CHECK_INT(send_cmd(p.ra, &first, "PING", NULL, NULL), RV_OK);
    CHECK_INT(send_cmd(p.ra, &second, "BLPOP", "nothing", "30"), RV_OK);
    loop_until(base, &second.done, 3000);
    CHECK_INT(first.calls, 1);
    CHECK_STR(first.str, "PONG");
    CHECK_INT(second.calls, 1);
    CHECK(second.got_null);
    CHECK(p.ra == NULL);
    CHECK_INT(p.downs, 0);
    /* Nothing of the freed connection may run any more (ASan watches). */
    loop_until(base, NULL, 300);
    CHECK_INT(first.calls, 1);
    CHECK_INT(second.calls, 1);
    event_base_free(base);
    rvt_redis_stop(&r);
}

static void test_async_free_with_commands_in_flight_calls_them_with_null(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct event_base *base = event_base_new();
    struct probe p = {0};
    p.ra = rv_rasync_new(base, &r.addr, on_state, &p);
    loop_until(base, &p.up, 3000);
    struct reply_probe a = {0}, b = {0};
    CHECK_INT(send_cmd(p.ra, &a, "BLPOP", "nothing", "30"), RV_OK);
    CHECK_INT(send_cmd(p.ra, &b, "PING", NULL, NULL), RV_OK);
    rv_rasync_free(p.ra);
    CHECK_INT(a.calls, 1);
    CHECK(a.got_null);
    CHECK_INT(b.calls, 1);
    CHECK(b.got_null);
    loop_until(base, NULL, 200);
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 1);

    /* Freed while the connect is still in progress. */
    struct probe q = {0};
    q.ra = rv_rasync_new(base, &r.addr, on_state, &q);
    rv_rasync_free(q.ra);
    loop_until(base, NULL, 200);
    CHECK_INT(q.ups, 0);
    event_base_free(base);
    rvt_redis_stop(&r);
}

static void test_async_free_from_state_callbacks_is_safe(void)
{
    struct rvt_redis r;
    CHECK_INT(rvt_redis_start(&r, NULL), 0);
    struct event_base *base = event_base_new();

    struct probe up = {.free_on_up = true};
    up.ra = rv_rasync_new(base, &r.addr, on_state, &up);
    loop_until(base, &up.up, 3000);
    CHECK_INT(up.ups, 1);
    CHECK(up.ra == NULL);
    loop_until(base, NULL, 200);
    CHECK_INT(up.downs, 0);

    struct probe down = {.free_on_down = true};
    down.ra = rv_rasync_new(base, &r.addr, on_state, &down);
    loop_until(base, &down.up, 3000);
    rvt_redis_kill(&r);
    loop_until(base, &down.down, 3000);
    CHECK_INT(down.downs, 1);
    CHECK(down.ra == NULL);
    CHECK_INT(rvt_redis_restart(&r), 0);
    /* No reconnect of a freed connection (ASan and the leak check watch). */
    loop_until(base, NULL, 500);
    CHECK_INT(down.ups, 1);
    event_base_free(base);
    rvt_redis_stop(&r);
}

int main(void)
{
    rv_log_min_level = RV_LOG_ERROR;
    RUN(test_parse_url_reads_every_documented_form);
    RUN(test_parse_url_refuses_bad_urls_without_showing_the_password);
    RUN(test_sync_connects_over_unix_socket);
    RUN(test_sync_connects_over_tcp);
    RUN(test_sync_authenticates_with_requirepass);
    RUN(test_sync_authenticates_as_acl_user);
    RUN(test_sync_select_lands_in_the_database_of_the_url);
    RUN(test_sync_reconnects_after_redis_restarts);
    RUN(test_sync_reconnects_at_once_after_the_server_drops_it);
    RUN(test_sync_run_refuses_a_command_that_ran_out_of_memory);
    RUN(test_async_reports_connected_and_calls_back_once);
    RUN(test_async_authenticates_and_selects_before_reporting_up);
    RUN(test_async_loses_in_flight_commands_and_reconnects);
    RUN(test_async_free_from_a_reply_callback_fails_the_rest);
    RUN(test_async_free_with_commands_in_flight_calls_them_with_null);
    RUN(test_async_free_from_state_callbacks_is_safe);
    return rvt_done();
}
