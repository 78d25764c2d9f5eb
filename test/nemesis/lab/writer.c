/*
 * The lab campaign's app (docs/nemesis.md, "The lab rig"):
 *
 *   writer --nemesis-app TAG VIP PORT RECORDS ACKDIR INTERVAL_MS
 *
 * Appends one 4096-byte record every INTERVAL_MS to RECORDS (on the shared file system) with
 * O_DIRECT|O_SYNC|O_APPEND, and after each write that returned the whole record, appends one line to its
 * acknowledgement log in ACKDIR (node-local, outside the shared file system). Meanwhile it answers every
 * TCP connection to VIP:PORT with its node's name (VIGIL_NODE) and a newline, like app.mjs.
 *
 * In C because Node has no O_DIRECT. The marker `--nemesis-app TAG` on the command line is how the campaign
 * finds every running copy (/proc). A failed write is logged and the next record is tried at the next
 * interval: the writer never gives up, so a fenced node's copy keeps trying to write (what fencing must
 * stop), and an app that cannot write shows as one that acknowledges nothing.
 *
 * Record (little-endian): 0 magic "VGREC001"; 8 node (16 bytes, NUL-padded); 24 epoch (VIGIL_EPOCH);
 * 32 seq (1, 2, ... per instance); 40 instance (random, per process); 48 time the write began (ns since the
 * epoch, CLOCK_REALTIME); 56 filler derived from (instance, seq) up to 4088; 4088 FNV-1a 64 of bytes 0-4087.
 *
 * Acknowledgement log ACKDIR/NODE-INSTANCE.acks, one line per event:
 *   S node instance epoch pid t_ns          the instance started
 *   A seq epoch t_begin_ns t_ack_ns         record seq was written (the write returned 4096)
 *   E seq errno t_ns                        record seq's write failed (or returned short: errno 0)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECORD 4096

static char node[16];
static char answer[64];
static uint64_t epoch, instance;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
  return h;
}

static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }

static void fill(unsigned char *rec, uint64_t seq, uint64_t began) {
  memset(rec, 0, RECORD);
  memcpy(rec, "VGREC001", 8);
  memcpy(rec + 8, node, sizeof node);
  put64(rec + 24, epoch);
  put64(rec + 32, seq);
  put64(rec + 40, instance);
  put64(rec + 48, began);
  /* xorshift from (instance, seq): a block mixed from two records fails the checksum or the pattern. */
  uint64_t x = instance ^ (seq * 0x9e3779b97f4a7c15ull) ^ 1;
  for (int off = 56; off < RECORD - 8; off += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    put64(rec + off, x);
  }
  put64(rec + RECORD - 8, fnv1a(rec, RECORD - 8));
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0 && write(fd, line, (size_t)n) < 0) { /* nowhere to say it */ }
}

struct serve_args { const char *vip; int port; };

static void *serve(void *arg) {
  struct serve_args *a = arg;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)a->port) };
  if (inet_pton(AF_INET, a->vip, &sa.sin_addr) != 1 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 16) < 0) {
    /* No address to bind (the VIP is not on this node): exit, so the agent sees a failed start. */
    fprintf(stderr, "nemesis writer: %s:%d: %s\n", a->vip, a->port, strerror(errno));
    exit(3);
  }
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (write(c, answer, strlen(answer)) < 0) { /* the client left */ }
    close(c);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 8 || strcmp(argv[1], "--nemesis-app") != 0) {
    fprintf(stderr, "usage: writer --nemesis-app TAG VIP PORT RECORDS ACKDIR INTERVAL_MS\n");
    return 2;
  }
  const char *records = argv[5], *ackdir = argv[6];
  long interval = atol(argv[7]);
  snprintf(node, sizeof node, "%s", getenv("VIGIL_NODE") ? getenv("VIGIL_NODE") : "?");
  snprintf(answer, sizeof answer, "%s\n", node);
  const char *e = getenv("VIGIL_EPOCH");
  epoch = e ? strtoull(e, NULL, 10) : 0;
  if (getrandom(&instance, sizeof instance, 0) != sizeof instance) instance = now_ns() ^ ((uint64_t)getpid() << 32);
  signal(SIGPIPE, SIG_IGN);

  char path[4096];
  snprintf(path, sizeof path, "%s/%s-%016llx.acks", ackdir, node, (unsigned long long)instance);
  int ack = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (ack < 0) { fprintf(stderr, "nemesis writer: %s: %s\n", path, strerror(errno)); return 4; }
  say(ack, "S %s %016llx %llu %d %llu\n", node, (unsigned long long)instance, (unsigned long long)epoch, (int)getpid(), (unsigned long long)now_ns());

  struct serve_args sa = { argv[3], atoi(argv[4]) };
  pthread_t server;
  pthread_create(&server, NULL, serve, &sa);

  unsigned char *rec;
  if (posix_memalign((void **)&rec, RECORD, RECORD) != 0) return 5;
  int fd = -1;
  for (uint64_t seq = 1;; seq++) {
    uint64_t began = now_ns();
    if (fd < 0) fd = open(records, O_WRONLY | O_CREAT | O_APPEND | O_DIRECT | O_SYNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      say(ack, "E %llu %d %llu\n", (unsigned long long)seq, errno, (unsigned long long)now_ns());
    } else {
      fill(rec, seq, began);
      ssize_t n = write(fd, rec, RECORD);
      int err = n < 0 ? errno : 0;
      uint64_t done = now_ns();
      if (n == RECORD) say(ack, "A %llu %llu %llu %llu\n", (unsigned long long)seq, (unsigned long long)epoch, (unsigned long long)began, (unsigned long long)done);
      else say(ack, "E %llu %d %llu\n", (unsigned long long)seq, err, (unsigned long long)done);
    }
    struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };
    nanosleep(&ts, NULL);
  }
}
