// A heartbeat flood for test/cluster/flood.test.ts: forged heartbeat datagrams, as fast as one thread can
// send them, to one address and port, for a while. Each is the right length with the right magic, type,
// cluster tag and a known sender id, everything an attacker on the network sees in clear, so the receiver
// gets as far as the HMAC (the most expensive check) before it drops it; the MAC itself is random.
// Prints the number of datagrams sent.
//
//   heartbeat-flood ADDRESS PORT CLUSTER_TAG SENDER_ID SECONDS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kHeader = 30, kPayload = 44, kMac = 32, kLength = kHeader + kPayload + kMac, kBatch = 64 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: heartbeat-flood ADDRESS PORT CLUSTER_TAG SENDER_ID SECONDS\n");
    return 2;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "heartbeat-flood: bad address %s\n", argv[1]);
    return 2;
  }
  uint32_t tag = (uint32_t)strtoul(argv[3], NULL, 0);
  uint16_t sender = (uint16_t)atoi(argv[4]);
  double until = now() + atof(argv[5]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&to, sizeof to) != 0) {
    perror("heartbeat-flood: socket");
    return 1;
  }
  static uint8_t datagrams[kBatch][kLength];
  struct iovec iov[kBatch];
  struct mmsghdr msgs[kBatch];
  memset(msgs, 0, sizeof msgs);
  uint64_t seq = 1;
  for (int i = 0; i < kBatch; i++) {
    uint8_t* d = datagrams[i];
    memcpy(d, "VGL\x01", 4);
    d[4] = 1;  // heartbeat
    d[5] = 0;  // heartbeat stream
    put(d + 6, sender, 2);
    put(d + 8, tag, 4);
    put(d + 12, 1, 8);  // incarnation
    put(d + 28, kPayload, 2);
    for (int j = kHeader; j < kLength; j++) d[j] = (uint8_t)rand();
    iov[i].iov_base = d;
    iov[i].iov_len = kLength;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0;
  while (now() < until) {
    for (int i = 0; i < kBatch; i++) put(datagrams[i] + 20, seq++, 8);
    int n = sendmmsg(fd, msgs, kBatch, 0);
    if (n > 0) sent += (unsigned)n;
  }
  printf("%llu\n", sent);
  return 0;
}
