/*
 * rv_embed: turns text files into C arrays at build time.
 *
 *   rv_embed lua OUT.c OUT.h INCLUDE_DIR script.lua...
 *       Each script `name-N.lua` becomes an entry {name, N, text}, and gets
 *       a typed builder in OUT.h/OUT.c (see "Script headers" below). A line
 *       `--- @include "helper"` is replaced by INCLUDE_DIR/helper.lua, whose
 *       own include lines are expanded in turn; each helper goes into a
 *       script once, and an include cycle is an error (BullMQ's loader does
 *       the same). `${NAME}` is replaced by a constant from keys.h (the
 *       events channel), so Lua and C cannot disagree on it.
 *   rv_embed static OUT.c - file...
 *       Each file becomes an entry {basename, content type, bytes, length}
 *       (the dashboard, the JS client, the OpenAPI document).
 *
 * Script headers. The leading --[[ ]] comment of a script names each key
 * and argument, one a line, in order:
 *
 *     KEYS[1] meta_key: rv:{id}:meta
 *     KEYS[3] leases (const): rv:leases
 *     ARGV[3] payload (bytes): job payload
 *     ARGV[5] now_ms (int): now (ms)
 *     ARGV[7] is_front (flag): queue at the front
 *
 * The name becomes a field of `struct rv_<script>_args`; the type in
 * parentheses says how it is sent: none = a NUL-terminated string,
 * (bytes) = a pointer and a `<name>_len`, (int) = an int64_t in decimal,
 * (flag) = a bool sent as '1' or '0', and for KEYS only (const) = the key
 * named in the description is a fixed one from keys.h, added by the
 * builder itself. `rv_script_<script>(cmd, &args)` builds the EVALSHA.
 *
 * It runs only on the project's own files, so it exits on the first error.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"

/* Constants a script may spell as ${NAME}. */
static const struct {
    const char *name;
    const char *value;
} substitutions[] = {
    {"RV_CHANNEL_EVENTS", RV_CHANNEL_EVENTS},
    {"RV_KEY_REPO_IDS", RV_KEY_REPO_IDS},
};

/* The fixed keys a (const) KEYS line may name. */
static const struct {
    const char *macro;
    const char *value;
} fixed_keys[] = {
    {"RV_KEY_REPOS", RV_KEY_REPOS},
    {"RV_KEY_REPO_IDS", RV_KEY_REPO_IDS},
    {"RV_KEY_QUEUE", RV_KEY_QUEUE},
    {"RV_KEY_LEASES", RV_KEY_LEASES},
    {"RV_KEY_SCHEDULE", RV_KEY_SCHEDULE},
    {"RV_KEY_DEADLETTER", RV_KEY_DEADLETTER},
    {"RV_KEY_GH_TOKENS", RV_KEY_GH_TOKENS},
    {"RV_KEY_ORGS", RV_KEY_ORGS},
    {"RV_KEY_ORG_OWNERS", RV_KEY_ORG_OWNERS},
    {"RV_KEY_GHNAME_INDEXED", RV_KEY_GHNAME_INDEXED},
};

#define MAX_INCLUDE_DEPTH 16
#define MAX_INCLUDES 64
#define MAX_PARAMS 32
#define NAME_MAX_LEN 64

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "rv_embed: %s: %s\n", what, arg);
    exit(1);
}

/* Reads a whole file into a NUL-terminated heap buffer owned by the caller. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        die("out of memory", path);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                die("out of memory", path);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void emit_bytes(FILE *out, const char *sym, const char *data, size_t len)
{
    fprintf(out, "static const char %s[] = {", sym);
    for (size_t i = 0; i < len; i++)
        fprintf(out, "%s%d,", i % 16 ? "" : "\n  ", (signed char)data[i]);
    fprintf(out, "\n  0};\n");
}

/* A growing NUL-terminated text buffer; the owner frees p. */
struct text {
    char *p;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (!t->p || t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p)
            die("out of memory", "text");
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* Appends line (n bytes) with every ${NAME} replaced by its constant. */
static void add_substituted(struct text *t, const char *line, size_t n)
{
    const char *end = line + n;
    while (line < end) {
        const char *open = strstr(line, "${");
        if (!open || open >= end) {
            text_add(t, line, (size_t)(end - line));
            return;
        }
        text_add(t, line, (size_t)(open - line));
        const char *close = memchr(open, '}', (size_t)(end - open));
        if (!close)
            die("unterminated ${ in script line", open);
        size_t nlen = (size_t)(close - open - 2);
        const char *value = NULL;
        for (size_t i = 0; i < sizeof(substitutions) / sizeof(*substitutions);
             i++)
            if (strlen(substitutions[i].name) == nlen &&
                !strncmp(substitutions[i].name, open + 2, nlen))
                value = substitutions[i].value;
        if (!value)
            die("unknown ${NAME} in script line", open);
        if (strpbrk(value, "'\"\\\n"))
            die("constant cannot be quoted in Lua", value);
        text_add(t, value, strlen(value));
        line = close + 1;
    }
}

/* What one script's expansion has seen: the includes on the way to the
 * current file (for the cycle check) and every include already expanded
 * (each goes in once). */
struct include_state {
    const char *incdir;
    char stack[MAX_INCLUDE_DEPTH][NAME_MAX_LEN];
    int depth;
    char done[MAX_INCLUDES][NAME_MAX_LEN];
    int ndone;
};

static void die_cycle(const struct include_state *st, const char *name)
{
    char path[MAX_INCLUDE_DEPTH * (NAME_MAX_LEN + 4) + NAME_MAX_LEN];
    size_t n = 0;
    for (int i = 0; i < st->depth; i++)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "%s -> ",
                              st->stack[i]);
    snprintf(path + n, sizeof(path) - n, "%s", name);
    die("include cycle", path);
}

/* Appends text to out with include lines expanded (recursively). */
static void expand(struct include_state *st, const char *text, struct text *out)
{
    const char *tag = "--- @include \"";
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t llen = end ? (size_t)(end - line + 1) : strlen(line);
        if (strncmp(line, tag, strlen(tag)) != 0) {
            add_substituted(out, line, llen);
            line += llen;
            continue;
        }
        const char *name = line + strlen(tag);
        const char *q = strchr(name, '"');
        if (!q || q > line + llen || q == name ||
            (size_t)(q - name) >= NAME_MAX_LEN)
            die("bad include line in script", line);
        char inc[NAME_MAX_LEN];
        snprintf(inc, sizeof(inc), "%.*s", (int)(q - name), name);
        for (const char *p = inc; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_')
                die("include names are letters, digits and _", inc);
        line += llen;
        for (int i = 0; i < st->depth; i++)
            if (!strcmp(st->stack[i], inc))
                die_cycle(st, inc);
        bool seen = false;
        for (int i = 0; i < st->ndone; i++)
            seen = seen || !strcmp(st->done[i], inc);
        if (seen)
            continue;
        if (st->depth == MAX_INCLUDE_DEPTH || st->ndone == MAX_INCLUDES)
            die("too many includes at", inc);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s.lua", st->incdir, inc);
        size_t ilen;
        char *body = read_file(path, &ilen);
        snprintf(st->stack[st->depth++], NAME_MAX_LEN, "%s", inc);
        expand(st, body, out);
        st->depth--;
        /* Marked done only after its own includes, so a cycle through it
         * is reported rather than silently cut. */
        snprintf(st->done[st->ndone++], NAME_MAX_LEN, "%s", inc);
        free(body);
    }
}

/* ---- script headers ---- */

enum param_type { P_STRING, P_BYTES, P_INT, P_FLAG, P_CONST };

struct param {
    bool is_key;
    char name[NAME_MAX_LEN];
    enum param_type type;
    char desc[200];
    const char *macro; /* P_CONST: the keys.h macro */
};

struct script {
    char name[NAME_MAX_LEN]; /* "claimJob" */
    int numkeys;             /* N of name-N.lua */
    struct param params[MAX_PARAMS];
    int nparams;
};

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses `KEYS[i] name (type): description` (or ARGV) into p. Returns the
 * index i. */
static int parse_param(const char *script, const char *line, size_t len,
                       struct param *p)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%.*s", (int)len, line);
    memset(p, 0, sizeof(*p));
    p->is_key = copy[0] == 'K';
    char *s = copy + 5; /* past "KEYS[" or "ARGV[" */
    char *num_end;
    long index = strtol(s, &num_end, 10);
    if (num_end == s || *num_end != ']' || index < 1)
        die("bad KEYS/ARGV index in the header of", script);
    const char *c = skip_blank(num_end + 1);
    size_t n = 0;
    while ((isalnum((unsigned char)c[n]) || c[n] == '_') &&
           n < NAME_MAX_LEN - 1)
        n++;
    if (n == 0 || !(islower((unsigned char)c[0]) || c[0] == '_'))
        die("KEYS/ARGV line needs a snake_case name", copy);
    snprintf(p->name, sizeof(p->name), "%.*s", (int)n, c);
    c = skip_blank(c + n);
    p->type = P_STRING;
    if (*c == '(') {
        static const struct {
            const char *word;
            enum param_type type;
        } types[] = {{"(bytes)", P_BYTES},
                     {"(int)", P_INT},
                     {"(flag)", P_FLAG},
                     {"(const)", P_CONST}};
        bool known = false;
        for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
            if (!strncmp(c, types[i].word, strlen(types[i].word))) {
                p->type = types[i].type;
                c += strlen(types[i].word);
                known = true;
            }
        if (!known)
            die("unknown type (bytes|int|flag|const expected)", copy);
        c = skip_blank(c);
    }
    if (*c != ':')
        die("KEYS/ARGV line needs `name:` or `name (type):`", copy);
    c = skip_blank(c + 1);
    snprintf(p->desc, sizeof(p->desc), "%s", c);
    /* The description goes into a C comment. */
    for (char *d = p->desc; (d = strstr(d, "*/")) != NULL;)
        d[1] = ' ';
    if (p->type == P_CONST) {
        if (!p->is_key)
            die("(const) is for KEYS only", copy);
        size_t vlen = strcspn(c, " \t,;");
        for (size_t i = 0; i < sizeof(fixed_keys) / sizeof(*fixed_keys); i++)
            if (strlen(fixed_keys[i].value) == vlen &&
                !strncmp(fixed_keys[i].value, c, vlen))
                p->macro = fixed_keys[i].macro;
        if (!p->macro)
            die("(const) key is not a fixed key of keys.h", copy);
    } else if (p->is_key && p->type != P_STRING) {
        die("KEYS are strings or (const)", copy);
    }
    return (int)index;
}

/* Reads the KEYS and ARGV lines of the script's leading comment. */
static void parse_header(const char *path, const char *text, struct script *sc)
{
    const char *name = base_name(path);
    const char *dash = strrchr(name, '-');
    const char *dot = strrchr(name, '.');
    if (!dash || !dot || dot < dash || !isdigit((unsigned char)dash[1]) ||
        (size_t)(dash - name) >= NAME_MAX_LEN)
        die("script name must be camelCaseName-N.lua", name);
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "%.*s", (int)(dash - name), name);
    for (const char *p = sc->name; *p; p++)
        if (!isalnum((unsigned char)*p))
            die("script name must be camelCaseName-N.lua", name);
    sc->numkeys = (int)strtol(dash + 1, NULL, 10);

    if (strncmp(text, "--[[", 4) != 0)
        die("script must start with a --[[ header ]]", path);
    const char *end = strstr(text, "]]");
    if (!end)
        die("unterminated header", path);
    int nkeys = 0, nargs = 0;
    for (const char *line = text; line < end;) {
        const char *eol = strchr(line, '\n');
        if (!eol || eol > end)
            eol = end;
        const char *s = skip_blank(line);
        if (!strncmp(s, "KEYS[", 5) || !strncmp(s, "ARGV[", 5)) {
            if (sc->nparams == MAX_PARAMS)
                die("too many KEYS and ARGV in", path);
            struct param *p = &sc->params[sc->nparams];
            int index = parse_param(path, s, (size_t)(eol - s), p);
            int *count = p->is_key ? &nkeys : &nargs;
            if (index != *count + 1 || (p->is_key && nargs > 0))
                die("KEYS then ARGV, numbered 1, 2, ... one a line, in", path);
            (*count)++;
            for (int i = 0; i < sc->nparams; i++)
                if (!strcmp(sc->params[i].name, p->name))
                    die("duplicate KEYS/ARGV name", p->name);
            sc->nparams++;
        }
        line = eol + 1;
    }
    if (nkeys != sc->numkeys)
        die("header KEYS do not match the N of name-N.lua", path);
}

/* "claimJob" -> "claimjob" (for the struct name). */
static void lower(const char *s, char *out, size_t outlen)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

static void emit_args_struct(FILE *h, const struct script *sc)
{
    char low[NAME_MAX_LEN];
    lower(sc->name, low, sizeof(low));
    fprintf(h,
            "\n/* lua/%s-%d.lua (its header says what each does). */\n"
            "struct rv_%s_args {\n",
            sc->name, sc->numkeys, low);
    for (int i = 0; i < sc->nparams; i++) {
        const struct param *p = &sc->params[i];
        const char *what = p->is_key ? "KEYS" : "ARGV";
        int index = p->is_key ? i + 1 : i + 1 - sc->numkeys;
        switch (p->type) {
        case P_CONST:
            fprintf(h, "    /* %s[%d] is %s, added by the builder */\n", what,
                    index, p->macro);
            break;
        case P_STRING:
            fprintf(h, "    const char *%s; /* %s[%d] %s */\n", p->name, what,
                    index, p->desc);
            break;
        case P_BYTES:
            fprintf(h,
                    "    const char *%s; /* %s[%d] %s */\n"
                    "    size_t %s_len;\n",
                    p->name, what, index, p->desc, p->name);
            break;
        case P_INT:
            fprintf(h, "    int64_t %s; /* %s[%d] %s */\n", p->name, what,
                    index, p->desc);
            break;
        case P_FLAG:
            fprintf(h, "    bool %s; /* %s[%d] %s */\n", p->name, what, index,
                    p->desc);
            break;
        }
    }
    fprintf(h,
            "};\nint rv_script_%s(struct rv_cmd *cmd,\n"
            "    const struct rv_%s_args *a);\n",
            sc->name, low);
}

static void emit_builder(FILE *c, const struct script *sc, int index)
{
    char low[NAME_MAX_LEN];
    lower(sc->name, low, sizeof(low));
    fprintf(c,
            "\nint rv_script_%s(struct rv_cmd *cmd,\n"
            "    const struct rv_%s_args *a)\n{\n",
            sc->name, low);
    /* A field left out of the initializer is NULL: a programmer error. */
    for (int i = 0; i < sc->nparams; i++) {
        const struct param *p = &sc->params[i];
        if (p->type == P_STRING || p->type == P_BYTES)
            fprintf(c, "    assert(a->%s != NULL);\n", p->name);
    }
    fprintf(c, "    rv_cmd_evalsha(cmd, rv_script_at(%d));\n", index);
    for (int i = 0; i < sc->nparams; i++) {
        const struct param *p = &sc->params[i];
        switch (p->type) {
        case P_CONST: fprintf(c, "    rv_cmd_add(cmd, %s);\n", p->macro); break;
        case P_STRING:
            fprintf(c, "    rv_cmd_add(cmd, a->%s);\n", p->name);
            break;
        case P_BYTES:
            fprintf(c, "    rv_cmd_addlen(cmd, a->%s, a->%s_len);\n", p->name,
                    p->name);
            break;
        case P_INT:
            fprintf(c, "    rv_cmd_addi64(cmd, a->%s);\n", p->name);
            break;
        case P_FLAG:
            fprintf(c, "    rv_cmd_add(cmd, a->%s ? \"1\" : \"0\");\n",
                    p->name);
            break;
        }
    }
    fprintf(c, "    return cmd->failed ? RV_ERR_NOMEM : RV_OK;\n}\n");
}

static void embed_lua(FILE *out, const char *hpath, const char *incdir,
                      int count, char **paths)
{
    FILE *h = fopen(hpath, "w");
    if (!h)
        die("cannot write", hpath);
    struct script *scripts =
        calloc((size_t)(count ? count : 1), sizeof(*scripts));
    if (!scripts)
        die("out of memory", "scripts");
    for (int i = 0; i < count; i++) {
        size_t len;
        char *text = read_file(paths[i], &len);
        parse_header(paths[i], text, &scripts[i]);
        struct include_state st;
        memset(&st, 0, sizeof(st));
        st.incdir = incdir;
        struct text body = {0};
        text_add(&body, "", 0);
        expand(&st, text, &body);
        char sym[32];
        snprintf(sym, sizeof(sym), "script_%d", i);
        emit_bytes(out, sym, body.p, body.len);
        free(text);
        free(body.p);
    }
    fprintf(out,
            "\nconst struct rv_embedded_script rv_embedded_scripts[] = {\n");
    for (int i = 0; i < count; i++)
        fprintf(out, "  {\"%s\", %d, script_%d, sizeof(script_%d) - 1},\n",
                scripts[i].name, scripts[i].numkeys, i, i);
    fprintf(out, "};\nconst size_t rv_embedded_scripts_count = %d;\n", count);

    fprintf(h,
            "/* Generated by rv_embed from the headers of the lua/ scripts; do "
            "not edit.\n * One builder per script: it starts cmd (which "
            "must be empty) as the\n * script's EVALSHA and adds its KEYS "
            "and ARGV from a. Returns RV_OK, or\n * RV_ERR_NOMEM (cmd is "
            "then marked failed). Pointers in a are copied;\n * the "
            "caller keeps them. */\n"
            "#ifndef REPOVIEW_GENERATED_SCRIPT_CALLS_H\n"
            "#define REPOVIEW_GENERATED_SCRIPT_CALLS_H\n\n"
            "#include <stdbool.h>\n#include <stddef.h>\n"
            "#include <stdint.h>\n\nstruct rv_cmd;\n");
    fprintf(out, "\n#include <assert.h>\n\n#include \"common/cmd.h\"\n"
                 "#include \"common/errors.h\"\n#include \"common/keys.h\"\n"
                 "#include \"common/scripts.h\"\n");
    for (int i = 0; i < count; i++) {
        emit_args_struct(h, &scripts[i]);
        emit_builder(out, &scripts[i], i);
    }
    fprintf(h, "\n#endif\n");
    free(scripts);
    if (fclose(h) != 0)
        die("cannot write", hpath);
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (!strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".json"))
        return "application/json";
    if (!strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

static void embed_static(FILE *out, int count, char **paths)
{
    for (int i = 0; i < count; i++) {
        size_t len;
        char *data = read_file(paths[i], &len);
        char sym[32];
        snprintf(sym, sizeof(sym), "file_%d", i);
        emit_bytes(out, sym, data, len);
        free(data);
    }
    fprintf(out, "\nconst struct rv_embedded_file rv_embedded_files[] = {\n");
    for (int i = 0; i < count; i++) {
        const char *name = base_name(paths[i]);
        fprintf(out, "  {\"%s\", \"%s\", file_%d, sizeof(file_%d) - 1},\n",
                name, content_type(name), i, i);
    }
    if (count == 0)
        fprintf(out, "  {NULL, NULL, NULL, 0},\n");
    fprintf(out, "};\nconst size_t rv_embedded_files_count = %d;\n", count);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        die("usage", "rv_embed lua OUT.c OUT.h INCLUDE_DIR FILE... | "
                     "rv_embed static OUT.c - FILE...");
    const char *mode = argv[1];
    bool is_lua = !strcmp(mode, "lua");
    if (!is_lua && strcmp(mode, "static"))
        die("unknown mode", mode);
    if (is_lua && argc < 5)
        die("usage", "rv_embed lua OUT.c OUT.h INCLUDE_DIR FILE...");
    FILE *out = fopen(argv[2], "w");
    if (!out)
        die("cannot write", argv[2]);
    fprintf(out, "/* Generated by rv_embed; do not edit. */\n"
                 "#include <stddef.h>\n#include \"common/embedded.h\"\n\n");
    if (is_lua)
        embed_lua(out, argv[3], argv[4], argc - 5, argv + 5);
    else
        embed_static(out, argc - 4, argv + 4);
    if (fclose(out) != 0)
        die("cannot write", argv[2]);
    return 0;
}
