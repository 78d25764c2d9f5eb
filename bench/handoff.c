// The addon's design without Node, for `npm run bench`: the main thread hands each TEST UNIT READY to a
// worker thread (condition variable), the worker runs SG_IO, and hands the result back through an eventfd
// the main thread waits on with epoll (libuv's uv_async does the same). It shows what the thread hand-off
// itself costs on this machine, apart from V8.
//   handoff DEVICE COUNT   -> prints the microseconds per command
#include <fcntl.h>
#include <pthread.h>
#include <scsi/sg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int fd, efd, count;
static int pending;  // guarded by lock: 1 when the main thread has handed over a command
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void tur(void) {
  unsigned char cdb[6] = {0}, sense[64];
  sg_io_hdr_t h;
  memset(&h, 0, sizeof h);
  h.interface_id = 'S';
  h.cmd_len = 6;
  h.cmdp = cdb;
  h.mx_sb_len = sizeof sense;
  h.sbp = sense;
  h.dxfer_direction = SG_DXFER_NONE;
  h.timeout = 30000;
  if (ioctl(fd, SG_IO, &h) < 0 || h.status != 0) {
    fprintf(stderr, "handoff: TEST UNIT READY failed\n");
    exit(1);
  }
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < count; i++) {
    pthread_mutex_lock(&lock);
    while (!pending) pthread_cond_wait(&wake, &lock);
    pending = 0;
    pthread_mutex_unlock(&lock);
    tur();
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) != sizeof one) exit(1);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: handoff DEVICE COUNT\n");
    return 1;
  }
  fd = open(argv[1], O_RDWR | O_NONBLOCK);
  count = atoi(argv[2]);
  if (fd < 0 || count < 1) {
    perror(argv[1]);
    return 1;
  }
  efd = eventfd(0, EFD_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);
  double t0 = now_us();
  for (int i = 0; i < count; i++) {
    pthread_mutex_lock(&lock);
    pending = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    struct epoll_event out;
    while (epoll_wait(ep, &out, 1, -1) < 1) {}
    uint64_t v;
    if (read(efd, &v, sizeof v) < 0) return 1;
  }
  printf("%.1f\n", (now_us() - t0) / count);
  pthread_join(th, NULL);
  return 0;
}
