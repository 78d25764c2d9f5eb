// The two ioctls of the kernel's IPMI device interface (ipmi_devintf), shared by the local BMC binding
// (ipmi_device.cc) and the watchdog keeper (watchdog_keeper.cc): a request to the BMC itself, and one
// message received.
#pragma once

#include <errno.h>
#include <linux/ipmi.h>
#include <sys/ioctl.h>

namespace vigil {

// IPMICTL_SEND_COMMAND to the BMC (the system interface address, channel 0xF, LUN 0). Returns 0 or the
// errno. Never retried on EINTR by the callers: a request sent twice may be a second power-off.
inline int IpmiSendToBmc(int fd, long msgid, unsigned char netfn, unsigned char cmd, unsigned char* data, unsigned short len) {
  ipmi_system_interface_addr addr{};
  addr.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE;
  addr.channel = IPMI_BMC_CHANNEL;
  addr.lun = 0;
  ipmi_req req{};
  req.addr = reinterpret_cast<unsigned char*>(&addr);
  req.addr_len = sizeof addr;
  req.msgid = msgid;
  req.msg.netfn = netfn;
  req.msg.cmd = cmd;
  req.msg.data_len = len;
  req.msg.data = len > 0 ? data : nullptr;
  return ioctl(fd, IPMICTL_SEND_COMMAND, &req) < 0 ? errno : 0;
}

// One message the driver has queued for this descriptor, into `data` (IPMI_MAX_MSG_LENGTH bytes): false
// when there is none (EAGAIN on the non-blocking descriptor) or the receive failed. _TRUNC: a message
// longer than the buffer is delivered cut (EMSGSIZE), never left to block the queue.
inline bool IpmiReceive(int fd, ipmi_recv* recv, unsigned char* data) {
  unsigned char addrBuf[IPMI_MAX_ADDR_SIZE];
  *recv = ipmi_recv{};
  recv->addr = addrBuf;
  recv->addr_len = sizeof addrBuf;
  recv->msg.data = data;
  recv->msg.data_len = IPMI_MAX_MSG_LENGTH;
  bool ok = ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC, recv) == 0 || errno == EMSGSIZE;
  recv->addr = nullptr;  // addrBuf ends here: nobody reads the sender's address
  return ok;
}

}  // namespace vigil
