// An FTDI FT232BM USB serial adapter, emulated in the lab guest, whose modem input lines a test sets at will.
//
// Why: neither a pty nor anything QEMU offers on these hosts carries modem lines with a modem-status
// interrupt (docs/lab.md, "Modem lines"). The guest's kernel can play both ends of a USB cable instead:
// dummy_hcd is a software USB host controller wired to a software device controller; this program is the
// device (a FunctionFS function in a configfs gadget with FTDI's vendor and product id), and the guest's own
// ftdi_sio driver binds to it as to a real adapter, giving /dev/ttyUSBn. Each modem-status change is sent
// the way the chip sends it, as the two status bytes that head every bulk-in packet; ftdi_sio compares them
// with the previous ones, bumps the per-line counters TIOCGICOUNT reads and wakes TIOCMIWAIT waiters. DTR
// and RTS set by the host arrive here as SET_MODEM_CTRL requests and are reported.
//
//   ftdi-gadget            (root; modprobes dummy_hcd, libcomposite, usb_f_fs, ftdi_sio)
//
// stdout, one line each:  tty /dev/ttyUSB0         the host side is bound and its tty exists
//                         mctrl dtr=1 rts=0 NS     the host set DTR/RTS (NS: CLOCK_MONOTONIC ns)
//                         open NS                  the host opened the port (FTDI reset request)
//                         ok COMMAND T0 T1         a command done: T0 before, T1 after the packet(s)
//                         err MESSAGE
// FTDI_TRACE=FILE:        SECONDS ...              every ep0 event, control request and status packet
// stdin commands:         set cts=1 dcd=0 ...      change lines (cts, dsr, ri, dcd), one status packet
//                         pulse LINE N             N pulses (two packets each: flip, flip back)
//                         unplug                   unbind the gadget: the adapter vanishes
//                         plug                     bind it again (answer: ok plug T0 T1 /dev/ttyUSBn)
//                         quit                     (or EOF) tear everything down and exit
#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GADGET "/sys/kernel/config/usb_gadget/vigil-ftdi"
#define FFS "/dev/ffs-vigil-ftdi"

// FTDI's vendor requests (the subset ftdi_sio sends to an FT232BM) and status bits.
enum { REQ_RESET = 0x00, REQ_MODEM_CTRL = 0x01, REQ_GET_MODEM_STATUS = 0x05, REQ_SET_LATENCY = 0x09,
       REQ_GET_LATENCY = 0x0a, REQ_READ_EEPROM = 0x90 };
enum { ST_CTS = 0x10, ST_DSR = 0x20, ST_RI = 0x40, ST_DCD = 0x80 };

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char lines;  // the ST_* bits now
static unsigned char latency = 16;
static int ep0 = -1, ep_in = -1, ep_out = -1;
static char udc[256];

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void say(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&out_lock);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
}

// FTDI_TRACE=FILE: every ep0 event, control request and status packet appended to FILE, one line each
// with CLOCK_MONOTONIC ns (the kernel log's clock), so that when the host's requests time out the test
// can show whether they reached this program and when it answered. One write per line: threads do not mix.
static int trace_fd = -1;
static void trace(const char *fmt, ...) {
  if (trace_fd < 0) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(line, sizeof line, "%lld.%09lld ", now_ns() / 1000000000LL, now_ns() % 1000000000LL);
  n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  if (write(trace_fd, line, n) < 0) trace_fd = -1;
}

static int put(const char *path, const char *value) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, value, strlen(value));
  int err = errno;
  close(fd);
  errno = err;
  return n < 0 ? -1 : 0;
}

static void die(const char *what) {
  say("err %s: %s", what, strerror(errno));
  exit(1);
}

// FunctionFS descriptors: one vendor-specific interface with a bulk IN and a bulk OUT endpoint, like the
// chip's, at full and high speed (dummy_hcd enumerates at high speed). FUNCTIONFS_ALL_CTRL_RECIP: FTDI's
// requests are addressed to the device, not the interface, and must reach this program all the same.
struct ep_desc {
  __u8 bLength, bDescriptorType, bEndpointAddress, bmAttributes;
  __le16 wMaxPacketSize;
  __u8 bInterval;
} __attribute__((packed));
struct speed_descs {
  struct usb_interface_descriptor intf;
  struct ep_desc in, out;
} __attribute__((packed));
static struct {
  struct usb_functionfs_descs_head_v2 header;
  __le32 fs_count, hs_count;
  struct speed_descs fs, hs;
} __attribute__((packed)) descriptors;
static struct {
  struct usb_functionfs_strings_head header;
  __le16 lang;
  char str[sizeof "FT232 emulation"];
} __attribute__((packed)) strings;

static void fill_speed(struct speed_descs *d, int max_packet) {
  d->intf = (struct usb_interface_descriptor){.bLength = sizeof d->intf, .bDescriptorType = USB_DT_INTERFACE,
      .bNumEndpoints = 2, .bInterfaceClass = 0xff, .bInterfaceSubClass = 0xff, .bInterfaceProtocol = 0xff,
      .iInterface = 1};
  d->in = (struct ep_desc){.bLength = USB_DT_ENDPOINT_SIZE, .bDescriptorType = USB_DT_ENDPOINT,
      .bEndpointAddress = 1 | USB_DIR_IN, .bmAttributes = USB_ENDPOINT_XFER_BULK, .wMaxPacketSize = htole16(max_packet)};
  d->out = (struct ep_desc){.bLength = USB_DT_ENDPOINT_SIZE, .bDescriptorType = USB_DT_ENDPOINT,
      .bEndpointAddress = 2 | USB_DIR_OUT, .bmAttributes = USB_ENDPOINT_XFER_BULK, .wMaxPacketSize = htole16(max_packet)};
}

// One status packet: the two bytes every FTDI bulk-in packet starts with (modem status, line status:
// transmitter empty). Blocks until the host's driver takes it; the host keeps reads queued while the port
// is open. SIGALRM (no SA_RESTART) bounds the wait when nobody has the port open.
static int send_status(unsigned char status) {
  unsigned char packet[2] = {(unsigned char)(status | 0x01), 0x60};
  alarm(3);
  ssize_t n = write(ep_in, packet, sizeof packet);
  int err = errno;
  alarm(0);
  trace("status %#x sent: %s", status, n == (ssize_t)sizeof packet ? "ok" : strerror(err));
  errno = err;
  return n == (ssize_t)sizeof packet ? 0 : -1;
}

static void on_alarm(int sig) { (void)sig; }

static void handle_setup(const struct usb_ctrlrequest *r) {
  unsigned char buf[64] = {0};
  unsigned value = le16toh(r->wValue), length = le16toh(r->wLength);
  if (length > sizeof buf) length = sizeof buf;
  trace("setup type=%#x req=%#x value=%#x length=%u", r->bRequestType, r->bRequest, value, length);
  if ((r->bRequestType & USB_TYPE_MASK) != USB_TYPE_VENDOR) goto stall;
  if (r->bRequestType & USB_DIR_IN) {
    switch (r->bRequest) {
      case REQ_GET_MODEM_STATUS:
        pthread_mutex_lock(&lines_lock);
        buf[0] = lines | 0x01;
        pthread_mutex_unlock(&lines_lock);
        buf[1] = 0x60;
        break;
      case REQ_GET_LATENCY: buf[0] = latency; break;
      case REQ_READ_EEPROM: break;  // a blank EEPROM
      default: goto stall;
    }
    if (write(ep0, buf, length) < 0) say("err ep0 write: %s", strerror(errno));
    trace("answered req=%#x", r->bRequest);
    return;
  }
  if (read(ep0, buf, length) < 0) say("err ep0 read: %s", strerror(errno));  // data stage, then status
  trace("acked req=%#x", r->bRequest);
  switch (r->bRequest) {
    case REQ_MODEM_CTRL: {
      static int dtr, rts;
      if (value & 0x0100) dtr = value & 1;
      if (value & 0x0200) rts = (value >> 1) & 1;
      say("mctrl dtr=%d rts=%d %lld", dtr, rts, now_ns());
      break;
    }
    case REQ_RESET:
      if ((value & 0xff) == 0) say("open %lld", now_ns());
      break;
    case REQ_SET_LATENCY: latency = value & 0xff; break;
    default: break;  // baud rate, data bits, flow control: nothing to emulate
  }
  return;
stall:  // FunctionFS stalls a request when ep0 is used in the direction opposite to its data stage
  if (r->bRequestType & USB_DIR_IN) {
    if (read(ep0, buf, 0) < 0 && errno != EL2HLT) say("err stall: %s", strerror(errno));
  } else {
    if (write(ep0, buf, 0) < 0 && errno != EL2HLT) say("err stall: %s", strerror(errno));
  }
}

static void *ep0_loop(void *arg) {
  (void)arg;
  for (;;) {
    struct usb_functionfs_event ev[4];
    ssize_t n = read(ep0, ev, sizeof ev);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    for (size_t i = 0; i < (size_t)n / sizeof ev[0]; i++) {
      static const char *const names[] = {"bind", "unbind", "enable", "disable", "setup", "suspend", "resume"};
      trace("event %s", ev[i].type < sizeof names / sizeof names[0] ? names[ev[i].type] : "?");
      if (ev[i].type == FUNCTIONFS_SETUP) handle_setup(&ev[i].u.setup);
    }
  }
}

static void *drain_out(void *arg) {  // whatever the host writes to the adapter is discarded
  (void)arg;
  char buf[512];
  for (;;) {
    if (read(ep_out, buf, sizeof buf) < 0 && errno != EINTR) return NULL;
  }
}

static void teardown(void) {
  put(GADGET "/UDC", "\n");
  if (ep_in >= 0) close(ep_in);
  if (ep_out >= 0) close(ep_out);
  if (ep0 >= 0) close(ep0);
  umount(FFS);
  rmdir(FFS);
  unlink(GADGET "/configs/c.1/ffs.ftdi");
  rmdir(GADGET "/configs/c.1/strings/0x409");
  rmdir(GADGET "/configs/c.1");
  rmdir(GADGET "/functions/ffs.ftdi");
  rmdir(GADGET "/strings/0x409");
  rmdir(GADGET);
}

static int line_bit(const char *name) {
  if (!strcmp(name, "cts")) return ST_CTS;
  if (!strcmp(name, "dsr")) return ST_DSR;
  if (!strcmp(name, "ri")) return ST_RI;
  if (!strcmp(name, "dcd") || !strcmp(name, "cd")) return ST_DCD;
  return 0;
}

static char *find_tty(void) {  // the ttyUSBn ftdi_sio made for this adapter
  static char path[300];
  DIR *d = opendir("/sys/bus/usb-serial/devices");
  struct dirent *e;
  if (!d) return NULL;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "ttyUSB", 6) == 0) {
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      closedir(d);
      return access(path, F_OK) == 0 ? path : NULL;
    }
  }
  closedir(d);
  return NULL;
}

int main(void) {
  if (getenv("FTDI_TRACE")) trace_fd = open(getenv("FTDI_TRACE"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  struct sigaction sa = {.sa_handler = on_alarm};  // no SA_RESTART: the blocked write returns EINTR
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (system("modprobe -a dummy_hcd libcomposite usb_f_fs ftdi_sio") != 0) die("modprobe");
  teardown();  // leftovers of an earlier run
  if (mkdir(GADGET, 0755) < 0) die("mkdir " GADGET);
  atexit(teardown);
  if (put(GADGET "/idVendor", "0x0403") || put(GADGET "/idProduct", "0x6001") ||
      put(GADGET "/bcdDevice", "0x0400") || put(GADGET "/bcdUSB", "0x0200")) die("gadget ids");
  if (mkdir(GADGET "/strings/0x409", 0755) < 0) die("mkdir strings");
  put(GADGET "/strings/0x409/manufacturer", "vigil lab");
  put(GADGET "/strings/0x409/product", "FT232BM emulation");
  put(GADGET "/strings/0x409/serialnumber", "VIGIL0001");
  if (mkdir(GADGET "/configs/c.1", 0755) < 0) die("mkdir config");
  put(GADGET "/configs/c.1/MaxPower", "100");
  if (mkdir(GADGET "/functions/ffs.ftdi", 0755) < 0) die("mkdir function");
  if (symlink(GADGET "/functions/ffs.ftdi", GADGET "/configs/c.1/ffs.ftdi") < 0) die("link function");
  mkdir(FFS, 0755);
  if (mount("ftdi", FFS, "functionfs", 0, NULL) < 0) die("mount functionfs");

  if ((ep0 = open(FFS "/ep0", O_RDWR)) < 0) die("open ep0");
  descriptors.header.magic = htole32(FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
  descriptors.header.flags = htole32(FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC | FUNCTIONFS_ALL_CTRL_RECIP);
  descriptors.header.length = htole32(sizeof descriptors);
  descriptors.fs_count = descriptors.hs_count = htole32(3);
  fill_speed(&descriptors.fs, 64);
  fill_speed(&descriptors.hs, 512);
  if (write(ep0, &descriptors, sizeof descriptors) < 0) die("write descriptors");
  strings.header.magic = htole32(FUNCTIONFS_STRINGS_MAGIC);
  strings.header.length = htole32(sizeof strings);
  strings.header.str_count = htole32(1);
  strings.header.lang_count = htole32(1);
  strings.lang = htole16(0x0409);
  memcpy(strings.str, "FT232 emulation", sizeof strings.str);
  if (write(ep0, &strings, sizeof strings) < 0) die("write strings");
  if ((ep_in = open(FFS "/ep1", O_RDWR)) < 0) die("open ep1");
  if ((ep_out = open(FFS "/ep2", O_RDWR)) < 0) die("open ep2");
  // SIGALRM bounds this (main) thread's status write; it is process-directed, so the kernel may hand it to
  // any thread that does not block it. Delivered to ep0_loop it can cut a control request's data stage
  // (the host's request then times out after 5 s: the one failure's kernel log shows "ftdi_set_termios
  // FAILED" during an open that delivered nothing for 15 s), and the main thread's write is left
  // unbounded. The threads inherit the blocked mask; main unblocks it.
  sigset_t alarm_only;
  sigemptyset(&alarm_only);
  sigaddset(&alarm_only, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm_only, NULL);
  pthread_t t0, t1;
  pthread_create(&t0, NULL, ep0_loop, NULL);
  pthread_create(&t1, NULL, drain_out, NULL);
  pthread_sigmask(SIG_UNBLOCK, &alarm_only, NULL);

  DIR *d = opendir("/sys/class/udc");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') snprintf(udc, sizeof udc, "%s", e->d_name);
  }
  if (d) closedir(d);
  if (!udc[0]) { errno = ENODEV; die("no UDC (dummy_hcd)"); }
  if (put(GADGET "/UDC", udc)) die("bind UDC");
  char *tty = NULL;
  for (int i = 0; i < 500 && !(tty = find_tty()); i++) usleep(10000);
  if (!tty) { errno = ETIMEDOUT; die("no ttyUSB appeared"); }
  say("tty %s", tty);

  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char *cmd = strtok(line, " \t\n");
    if (!cmd) continue;
    if (!strcmp(cmd, "quit")) break;
    if (!strcmp(cmd, "unplug")) {
      long long t0 = now_ns();
      if (put(GADGET "/UDC", "\n")) say("err unplug: %s", strerror(errno)); else say("ok unplug %lld %lld", t0, now_ns());
      continue;
    }
    if (!strcmp(cmd, "plug")) {
      long long t0 = now_ns();
      char *again = NULL;
      if (put(GADGET "/UDC", udc)) { say("err plug: %s", strerror(errno)); continue; }
      for (int i = 0; i < 500 && !(again = find_tty()); i++) usleep(10000);
      if (again) say("ok plug %lld %lld %s", t0, now_ns(), again); else say("err plug: no ttyUSB appeared");
      continue;
    }
    if (!strcmp(cmd, "set")) {
      pthread_mutex_lock(&lines_lock);
      unsigned char next = lines;
      pthread_mutex_unlock(&lines_lock);
      char *arg;
      int bad = 0;
      while ((arg = strtok(NULL, " \t\n")) != NULL) {
        char *eq = strchr(arg, '=');
        int bit = eq ? (*eq = 0, line_bit(arg)) : 0;
        if (!bit) { bad = 1; break; }
        next = eq[1] == '1' ? (next | bit) : (next & ~bit);
      }
      if (bad) { say("err usage: set cts=0|1 dsr=0|1 ri=0|1 dcd=0|1"); continue; }
      pthread_mutex_lock(&lines_lock);
      lines = next;
      pthread_mutex_unlock(&lines_lock);
      long long t0 = now_ns();
      if (send_status(next)) say("err set: %s", strerror(errno)); else say("ok set %lld %lld", t0, now_ns());
      continue;
    }
    if (!strcmp(cmd, "pulse")) {
      char *name = strtok(NULL, " \t\n"), *count = strtok(NULL, " \t\n");
      int bit = name ? line_bit(name) : 0, n = count ? atoi(count) : 1;
      if (!bit || n < 1) { say("err usage: pulse LINE N"); continue; }
      long long t0 = now_ns();
      int failed = 0;
      for (int i = 0; i < n && !failed; i++) {
        pthread_mutex_lock(&lines_lock);
        unsigned char base = lines;
        pthread_mutex_unlock(&lines_lock);
        failed = send_status(base ^ bit) || send_status(base);
      }
      if (failed) say("err pulse: %s", strerror(errno)); else say("ok pulse %lld %lld", t0, now_ns());
      continue;
    }
    say("err unknown command %s", cmd);
  }
  return 0;
}
