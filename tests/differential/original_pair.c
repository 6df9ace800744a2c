/*
 * original_pair: a client and a server of the ORIGINAL libossuary 0.5 (its C library,
 * ../shared/interop/libossuary-0.5.2/libossuary.so), in memory, in lock step, with faults
 * injected on the wire between them. The oracle of the differential tests
 * (tests/Ossuary.Pipelines.Tests/Interop/Original/Differential): the test drives our
 * OssuarySession pair through the same loop and compares every line this program prints.
 *
 * The loop is ref-peer's `pair` loop (ref-peer-src/ref-peer/src/main.rs, pair_step), made
 * for the C API and extended with faults; ref-peer pair itself has no way to inject them.
 * One difference of delivery, on purpose: a receive call is handed at most one whole packet
 * (framed by its header), where ref-peer hands all bytes received. The original keeps extra
 * bytes in an internal buffer that every reset empties, so how many packets a read returns
 * would decide what it loses; handing one packet at a time compares the state machines, not
 * the read sizes. The C API of 0.5 has no disconnect call, so this loop never closes cleanly
 * by itself; the tests cover a clean close with ref-peer pair (--client-disconnect).
 *
 * Usage (keys are 64 hex digits; hex messages may be empty strings):
 *   original_pair [--server-type auth|unauth] [--server-secret H] [--client-secret H]
 *                 [--client-authorized H]... [--server-authorized H]... [--tofu]
 *                 [--client-send-hex H]... [--server-send-hex H]... [--rounds N]
 *                 [--corrupt SIDE:N:OFFSET:XOR]... [--inject SIDE:N:reset|disconnect0|disconnect1]...
 *                 [--inject-hex SIDE:N:HEX]... [--replay SIDE:N:M]... [--extend SIDE:N:K]...
 *                 [--truncate SIDE:N:K]... [--drop SIDE:N]...
 * A fault applies to packet N (0-based) that SIDE (client|server) writes: --corrupt changes
 * byte OFFSET % length of the copy put on the wire (XOR with XOR; offsets 0 and 1, the length
 * field, instead set the top bit of byte 0, an oversized length, since any other length
 * change misframes the stream); --inject puts a Reset or a Disconnect (error flag 0 or 1),
 * msg_id 0, on the wire right after that packet; --inject-hex puts the given bytes there
 * (any packet, well formed or not); --replay puts there a copy of the side's packet M as it
 * was written (M <= N: a replay, or with --drop of M a reordering); --extend appends K bytes
 * (0xa5) to the packet's body and adds K to its length field; --truncate cuts its body to its
 * first K bytes and sets its length field to K; --drop keeps the packet off the wire. Faults apply in the order: corrupt or extend the packet (or cut it, or drop it), then what
 * follows it, in the order given.
 *
 * Output, one stream on stdout, flushed line by line (a panic of the library aborts the
 * process; everything printed before it is kept):
 *   ROUND n
 *   PKT client|server HEX                 a packet as the side wrote it
 *   EVT side send_handshake Ok(n)|Err(r)
 *   EVT side recv_handshake Ok(n)|Err(r)  (nothing while it would block)
 *   EVT side established remote_key=HEX|none   (once per side)
 *   EVT side recv_data Ok((n, m)) plaintext=HEX | Err(r)  (nothing while it would block)
 *   EVT side send_data Ok(n)|Err(r)
 *   EVT side handshake_done UntrustedServer(HEX) | Err(r)
 *   END client=STATUS server=STATUS
 * Exit status 0, 2 for bad arguments.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ossuary.h"

#define MAX_PACKET 16412
#define MAX_MESSAGES 64
#define MAX_KEYS 8
#define MAX_FAULTS 16

typedef struct {
    uint8_t *data;
    size_t len, cap, pos;
} wire_t;

typedef struct {
    int side; /* 0 client, 1 server */
    int index;
    int kind; /* 0 corrupt, 1 reset, 2 disconnect0, 3 disconnect1, 4 hex, 5 replay, 6 extend, 7 drop, 8 truncate */
    unsigned offset, xor_mask; /* replay: offset is M; extend and truncate: offset is K */
    uint8_t *hex;
    size_t hex_len;
} fault_t;

enum { FAULT_CORRUPT, FAULT_RESET, FAULT_DISCONNECT0, FAULT_DISCONNECT1, FAULT_HEX, FAULT_REPLAY, FAULT_EXTEND, FAULT_DROP, FAULT_TRUNCATE };

#define MAX_WRITTEN 256

typedef struct {
    const char *name;
    int index;
    OssuaryConnection *conn;
    uint8_t *msgs[MAX_MESSAGES];
    size_t msg_len[MAX_MESSAGES];
    int msg_count, next_msg;
    int tofu;
    int terminal;
    char terminal_text[160];
    int established_logged;
    int written; /* packets written so far */
    uint8_t *sent[MAX_WRITTEN]; /* copies of the packets written, for --replay */
    size_t sent_len[MAX_WRITTEN];
} side_t;

static fault_t faults[MAX_FAULTS];
static int fault_count;

static void die_usage(const char *why) {
    fprintf(stderr, "original_pair: %s\n", why);
    exit(2);
}

static void print_hex(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static int unhex(const char *s, uint8_t **out, size_t *out_len) {
    size_t n = strlen(s);
    if (n % 2) return -1;
    uint8_t *b = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) { free(b); return -1; }
        b[i] = (uint8_t)v;
    }
    *out = b;
    *out_len = n / 2;
    return 0;
}

static void key32(const char *s, uint8_t key[32]) {
    uint8_t *b;
    size_t n;
    if (unhex(s, &b, &n) != 0 || n != 32) die_usage("a key must be 64 hex digits");
    memcpy(key, b, 32);
    free(b);
}

static void wire_push(wire_t *w, const uint8_t *b, size_t n) {
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 1024;
        w->data = realloc(w->data, w->cap);
    }
    memcpy(w->data + w->len, b, n);
    w->len += n;
}

/* The next whole packet waiting on the wire, as framed by its header (all that is there if less). */
static size_t wire_next_packet(const wire_t *w) {
    size_t avail = w->len - w->pos;
    if (avail < 8) return avail;
    size_t want = 8 + (((size_t)w->data[w->pos] << 8) | w->data[w->pos + 1]);
    return want < avail ? want : avail;
}

static void control_packet(uint8_t pkt[12], uint16_t type, int error) {
    memset(pkt, 0, 12);
    pkt[1] = 4;
    pkt[4] = (uint8_t)(type >> 8);
    pkt[5] = (uint8_t)type;
    pkt[8] = 4;
    pkt[10] = (uint8_t)error;
}

/* Prints a packet the side wrote and puts it, with its faults, on the wire to the peer. */
static void emit(side_t *s, const uint8_t *pkt, size_t n, wire_t *out) {
    printf("PKT %s ", s->name);
    print_hex(pkt, n);
    printf("\n");
    if (s->written < MAX_WRITTEN) {
        s->sent[s->written] = malloc(n ? n : 1);
        memcpy(s->sent[s->written], pkt, n);
        s->sent_len[s->written] = n;
    }
    static uint8_t copy[2 * MAX_PACKET + 0x10000];
    size_t copy_len = n;
    int dropped = 0;
    memcpy(copy, pkt, n);
    for (int i = 0; i < fault_count; i++) {
        fault_t *f = &faults[i];
        if (f->side != s->index || f->index != s->written || n == 0) continue;
        if (f->kind == FAULT_CORRUPT) {
            unsigned at = f->offset % n;
            if (at < 2) copy[0] |= 0x80;
            else copy[at] ^= (uint8_t)f->xor_mask;
        } else if (f->kind == FAULT_EXTEND && copy_len >= 8) {
            memset(copy + copy_len, 0xa5, f->offset);
            copy_len += f->offset;
            unsigned len = (((unsigned)copy[0] << 8) | copy[1]) + f->offset;
            copy[0] = (uint8_t)(len >> 8);
            copy[1] = (uint8_t)len;
        } else if (f->kind == FAULT_TRUNCATE && copy_len >= 8 && f->offset < copy_len - 8) {
            copy_len = 8 + f->offset;
            copy[0] = (uint8_t)(f->offset >> 8);
            copy[1] = (uint8_t)f->offset;
        } else if (f->kind == FAULT_DROP) {
            dropped = 1;
        }
    }
    if (!dropped) wire_push(out, copy, copy_len);
    for (int i = 0; i < fault_count; i++) {
        fault_t *f = &faults[i];
        if (f->side != s->index || f->index != s->written) continue;
        if (f->kind >= FAULT_RESET && f->kind <= FAULT_DISCONNECT1) {
            uint8_t ctl[12];
            control_packet(ctl, f->kind == FAULT_RESET ? 0x11 : 0x10, f->kind == FAULT_RESET ? 1 : f->kind - FAULT_DISCONNECT0);
            wire_push(out, ctl, sizeof ctl);
        } else if (f->kind == FAULT_HEX) {
            wire_push(out, f->hex, f->hex_len);
        } else if (f->kind == FAULT_REPLAY && (int)f->offset <= s->written && f->offset < MAX_WRITTEN) {
            wire_push(out, s->sent[f->offset], s->sent_len[f->offset]);
        }
    }
    s->written++;
    fflush(stdout);
}

static void result(const char *name, const char *call, int32_t r) {
    if (r >= 0) printf("EVT %s %s Ok(%d)\n", name, call, r);
    else printf("EVT %s %s Err(%d)\n", name, call, r);
}

static int step(side_t *s, wire_t *in, wire_t *out) {
    static uint8_t buf[MAX_PACKET + 16];
    int progress = 0;
    if (s->terminal) return 0;
    int32_t done = ossuary_handshake_done(s->conn);
    if (done == 0) {
        uint16_t out_len = sizeof buf;
        int32_t r = ossuary_send_handshake(s->conn, buf, &out_len);
        result(s->name, "send_handshake", r);
        if (r > 0) {
            emit(s, buf, (size_t)r, out);
            progress = 1;
        }
        size_t handed = wire_next_packet(in);
        uint16_t in_len = (uint16_t)handed;
        r = ossuary_recv_handshake(s->conn, in->data ? in->data + in->pos : buf, &in_len);
        /* On an error 0.5 reports 0 consumed, but it has read (and then dropped) all it was handed. */
        in->pos += r == -1 ? handed : in_len;
        if (r != OSSUARY_ERR_WOULDBLOCK) {
            result(s->name, "recv_handshake", r);
            progress = 1;
        }
    } else if (done == 1) {
        if (!s->established_logged) {
            uint8_t key[32];
            s->established_logged = 1;
            printf("EVT %s established remote_key=", s->name);
            if (ossuary_remote_public_key(s->conn, key, sizeof key) == 0) print_hex(key, 32);
            else printf("none");
            printf("\n");
        }
        size_t handed = wire_next_packet(in);
        uint16_t in_len = (uint16_t)handed, plain_len = sizeof buf;
        int32_t r = ossuary_recv_data(s->conn, in->data ? in->data + in->pos : buf, &in_len, buf, &plain_len);
        in->pos += r == -1 ? handed : in_len;
        if (r == -1) {
            printf("EVT %s recv_data Err(%d)\n", s->name, r);
            progress = 1;
        } else if (r > 0) {
            printf("EVT %s recv_data Ok((%d, %u)) plaintext=", s->name, r, plain_len);
            print_hex(buf, plain_len);
            printf("\n");
            progress = 1;
        }
        if (ossuary_handshake_done(s->conn) == 1 && s->next_msg < s->msg_count) {
            uint16_t out_len = sizeof buf;
            int m = s->next_msg++;
            r = ossuary_send_data(s->conn, s->msgs[m], (uint16_t)s->msg_len[m], buf, &out_len);
            result(s->name, "send_data", r);
            if (r > 0) {
                emit(s, buf, (size_t)r, out);
                progress = 1;
            }
        }
    } else if (done == OSSUARY_ERR_UNTRUSTED_SERVER) {
        uint8_t key[32] = {0};
        ossuary_remote_public_key(s->conn, key, sizeof key);
        printf("EVT %s handshake_done UntrustedServer(", s->name);
        print_hex(key, 32);
        printf(")\n");
        if (s->tofu) {
            ossuary_add_authorized_key(s->conn, key);
            progress = 1;
        } else {
            s->terminal = 1;
            char *t = s->terminal_text;
            t += sprintf(t, "untrusted server ");
            for (int i = 0; i < 32; i++) t += sprintf(t, "%02x", key[i]);
        }
    } else {
        printf("EVT %s handshake_done Err(%d)\n", s->name, done);
        s->terminal = 1;
        sprintf(s->terminal_text, "Err(%d)", done);
    }
    fflush(stdout);
    return progress;
}

static void parse_fault(const char *option, const char *spec) {
    if (fault_count == MAX_FAULTS) die_usage("too many faults");
    fault_t *f = &faults[fault_count++];
    char side[16], kind[16];
    if (strncmp(spec, "client:", 7) == 0) f->side = 0;
    else if (strncmp(spec, "server:", 7) == 0) f->side = 1;
    else die_usage("a fault starts with client: or server:");
    if (strcmp(option, "--corrupt") == 0) {
        f->kind = FAULT_CORRUPT;
        if (sscanf(spec, "%15[a-z]:%d:%u:%x", side, &f->index, &f->offset, &f->xor_mask) != 4 || f->xor_mask == 0 || f->xor_mask > 255)
            die_usage("--corrupt SIDE:N:OFFSET:XOR (XOR 1..ff)");
    } else if (strcmp(option, "--inject") == 0) {
        if (sscanf(spec, "%15[a-z]:%d:%15s", side, &f->index, kind) != 3) die_usage("--inject SIDE:N:KIND");
        if (strcmp(kind, "reset") == 0) f->kind = FAULT_RESET;
        else if (strcmp(kind, "disconnect0") == 0) f->kind = FAULT_DISCONNECT0;
        else if (strcmp(kind, "disconnect1") == 0) f->kind = FAULT_DISCONNECT1;
        else die_usage("--inject kinds: reset, disconnect0, disconnect1");
    } else if (strcmp(option, "--inject-hex") == 0) {
        int at = 0;
        f->kind = FAULT_HEX;
        if (sscanf(spec, "%15[a-z]:%d:%n", side, &f->index, &at) != 2 || at == 0 || unhex(spec + at, &f->hex, &f->hex_len) != 0)
            die_usage("--inject-hex SIDE:N:HEX");
    } else if (strcmp(option, "--replay") == 0) {
        f->kind = FAULT_REPLAY;
        if (sscanf(spec, "%15[a-z]:%d:%u", side, &f->index, &f->offset) != 3) die_usage("--replay SIDE:N:M");
    } else if (strcmp(option, "--extend") == 0) {
        f->kind = FAULT_EXTEND;
        if (sscanf(spec, "%15[a-z]:%d:%u", side, &f->index, &f->offset) != 3 || f->offset > 0xffff) die_usage("--extend SIDE:N:K (K at most 65535)");
    } else if (strcmp(option, "--truncate") == 0) {
        f->kind = FAULT_TRUNCATE;
        if (sscanf(spec, "%15[a-z]:%d:%u", side, &f->index, &f->offset) != 3) die_usage("--truncate SIDE:N:K");
    } else {
        f->kind = FAULT_DROP;
        if (sscanf(spec, "%15[a-z]:%d", side, &f->index) != 2) die_usage("--drop SIDE:N");
    }
}

static void add_message(side_t *s, const char *hex) {
    if (s->msg_count == MAX_MESSAGES) die_usage("too many messages");
    if (unhex(hex, &s->msgs[s->msg_count], &s->msg_len[s->msg_count]) != 0 || s->msg_len[s->msg_count] > 16384)
        die_usage("a message is hex, at most 16384 bytes");
    s->msg_count++;
}

static void print_status(side_t *s) {
    if (s->terminal) {
        printf("%s", s->terminal_text);
        return;
    }
    int32_t done = ossuary_handshake_done(s->conn);
    if (done == 0 || done == 1) printf("Ok(%s)", done ? "true" : "false");
    else printf("Err(%d)", done);
}

int main(int argc, char **argv) {
    int server_auth = 0, tofu = 0, max_rounds = 400, have_server_secret = 0, have_client_secret = 0;
    uint8_t server_secret[32], client_secret[32];
    uint8_t client_keys[MAX_KEYS][32], server_keys[MAX_KEYS][32];
    int client_key_count = 0, server_key_count = 0;
    side_t c = { .name = "client", .index = 0 }, s = { .name = "server", .index = 1 };

    /* Line by line even into a pipe: a panic aborts the process, and the lines of the step
     * that panicked must not die in the stdio buffer with it. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc && strcmp(a, "--tofu") != 0) die_usage("an option needs a value");
        if (strcmp(a, "--server-type") == 0) server_auth = strcmp(argv[++i], "auth") == 0;
        else if (strcmp(a, "--server-secret") == 0) { key32(argv[++i], server_secret); have_server_secret = 1; }
        else if (strcmp(a, "--client-secret") == 0) { key32(argv[++i], client_secret); have_client_secret = 1; }
        else if (strcmp(a, "--client-authorized") == 0 && client_key_count < MAX_KEYS) key32(argv[++i], client_keys[client_key_count++]);
        else if (strcmp(a, "--server-authorized") == 0 && server_key_count < MAX_KEYS) key32(argv[++i], server_keys[server_key_count++]);
        else if (strcmp(a, "--tofu") == 0) tofu = 1;
        else if (strcmp(a, "--client-send-hex") == 0) add_message(&c, argv[++i]);
        else if (strcmp(a, "--server-send-hex") == 0) add_message(&s, argv[++i]);
        else if (strcmp(a, "--rounds") == 0) max_rounds = atoi(argv[++i]);
        else if (strcmp(a, "--corrupt") == 0 || strcmp(a, "--inject") == 0 || strcmp(a, "--inject-hex") == 0
                 || strcmp(a, "--replay") == 0 || strcmp(a, "--extend") == 0 || strcmp(a, "--truncate") == 0
                 || strcmp(a, "--drop") == 0) {
            parse_fault(a, argv[i + 1]);
            i++;
        }
        else die_usage("unknown option");
    }

    /* Created in ref-peer pair's order (client first), so that the random draws match. */
    c.conn = ossuary_create_connection(OSSUARY_CONN_TYPE_CLIENT, have_client_secret ? client_secret : NULL);
    s.conn = ossuary_create_connection(server_auth ? OSSUARY_CONN_TYPE_AUTHENTICATED_SERVER : OSSUARY_CONN_TYPE_UNAUTHENTICATED_SERVER,
                                       have_server_secret ? server_secret : NULL);
    if (!c.conn || !s.conn) {
        fprintf(stderr, "original_pair: ossuary_create_connection failed\n");
        return 1;
    }
    c.tofu = tofu;
    for (int i = 0; i < client_key_count; i++) ossuary_add_authorized_key(c.conn, client_keys[i]);
    for (int i = 0; i < server_key_count; i++) ossuary_add_authorized_key(s.conn, server_keys[i]);

    wire_t c2s = {0}, s2c = {0};
    int idle = 0;
    for (int round = 0; round < max_rounds; round++) {
        printf("ROUND %d\n", round);
        int p1 = step(&c, &s2c, &c2s);
        int p2 = step(&s, &c2s, &s2c);
        if (p1 || p2) idle = 0;
        else if (++idle >= 3) break;
    }
    printf("END client=");
    print_status(&c);
    printf(" server=");
    print_status(&s);
    printf("\n");
    fflush(stdout);
    ossuary_destroy_connection(&c.conn);
    ossuary_destroy_connection(&s.conn);
    return 0;
}
