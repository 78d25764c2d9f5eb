# LIO through configfs, sourced by guest-init. Direct configfs writes take ~2 s for the whole lab, where
# targetcli costs ~3 s per call and needs a system D-Bus.
#
# Pitfalls this file encodes (measured on Debian's 6.1 kernel, see shared/notes/lab.md):
# - /etc/target/pr must exist before target_core_mod loads, else every PR OUT answers NOT READY 02/08/00
#   although the registration applied (guest-init creates it before any modprobe);
# - a backstore needs wwn/vpd_unit_serial, else it has no VPD pages 0x80/0x83 and so no identity;
# - a tcm_loop nexus must be written before the LUN is linked, else no SCSI device appears.

CFS=/sys/kernel/config/target

# fileio_backstore NAME SERIAL SIZE_BYTES: a file-backed logical unit in the guest's tmpfs.
fileio_backstore() {
  local name=$1 serial=$2 size=$3 dir=$CFS/core/fileio_0/$1
  mkdir -p /var/lib/vigil-lab "$dir"
  echo "fd_dev_name=/var/lib/vigil-lab/$name.img,fd_dev_size=$size" > "$dir/control"
  echo "$serial" > "$dir/wwn/vpd_unit_serial"
  echo 1 > "$dir/enable"
  # Like a RAID controller with a write cache (WCE=1). With WCE=0, LIO refuses any WRITE with FUA as
  # ILLEGAL REQUEST, invalid field in CDB (05/24/00).
  echo 1 > "$dir/attrib/emulate_write_cache"
}

# ramdisk_backstore NAME SERIAL PAGES: a small memory-backed logical unit (4 KiB pages).
ramdisk_backstore() {
  local name=$1 serial=$2 pages=$3 dir=$CFS/core/rd_mcp_0/$1
  mkdir -p "$dir"
  echo "rd_pages=$pages" > "$dir/control"
  echo "$serial" > "$dir/wwn/vpd_unit_serial"
  echo 1 > "$dir/enable"
}

# loop_target WWN NEXUS_WWN BACKSTORE_DIR...: one tcm_loop target (a SCSI host in the guest) whose LUNs
# 0..n-1 are the given backstores. Each target is its own I_T nexus: two targets on one backstore are two
# "servers" sharing one disk.
loop_target() {
  local wwn=$1 nexus=$2 tpg=$CFS/loopback/$1/tpgt_1 lun=0
  shift 2
  mkdir -p "$tpg"
  echo "$nexus" > "$tpg/nexus"
  for backstore in "$@"; do
    mkdir -p "$tpg/lun/lun_$lun"
    ln -s "$backstore" "$tpg/lun/lun_$lun/$(basename "$backstore")"
    lun=$((lun + 1))
  done
}

# loop_sg WWN LUN: the sg node the guest gave LUN of that tcm_loop target, once it has appeared.
# tpgt_1/address is the target's SCSI address "host:channel:target".
loop_sg() {
  local addr dev
  addr=$(cat "$CFS/loopback/$1/tpgt_1/address")
  wait_sg "/sys/bus/scsi/devices/$addr:$2"
}

# wait_sg SYSFS_SCSI_DEVICE: its sg node, waiting up to 10 s for the scan to create it.
wait_sg() {
  local i
  for i in $(seq 1 200); do
    for dev in "$1"/scsi_generic/sg*; do
      [ -e "$dev" ] && [ -e "/dev/$(basename "$dev")" ] && { echo "/dev/$(basename "$dev")"; return 0; }
    done
    sleep 0.05
  done
  echo "lab: no sg device appeared under $1" >&2
  return 1
}

# sd_of /dev/sgN: the sd node of the same SCSI device.
sd_of() {
  local dev
  for dev in /sys/class/scsi_generic/"$(basename "$1")"/device/block/*; do
    [ -e "$dev" ] && { echo "/dev/$(basename "$dev")"; return 0; }
  done
  return 1
}

# wwid_of /dev/sgN: the kernel's idea of the unit's identity (from VPD 0x83 at probe time). Tests use it
# as an oracle independent of vigil's own parser.
wwid_of() { cat /sys/class/scsi_generic/"$(basename "$1")"/device/wwid; }

# iscsi_target IQN BACKSTORE_DIR: an LIO iSCSI target on 127.0.0.1:3260 in demo mode (any initiator
# name, no CHAP), so each initiator name is its own I_T nexus with the same reservation rules as tcm_loop.
iscsi_target() {
  local tpg=$CFS/iscsi/$1/tpgt_1
  mkdir -p "$tpg/np/127.0.0.1:3260" "$tpg/lun/lun_0"
  ln -s "$2" "$tpg/lun/lun_0/$(basename "$2")"
  echo 1 > "$tpg/attrib/generate_node_acls"
  echo 1 > "$tpg/attrib/cache_dynamic_acls"
  echo 0 > "$tpg/attrib/authentication"
  echo 0 > "$tpg/attrib/demo_mode_write_protect"
  echo 1 > "$tpg/enable"
}

# iscsi_login IQN INITIATOR_NAME...: open-iscsi sessions to the target, one per initiator name (each
# through its own iface), and prints the sg node of each session's LUN 0 in that order.
iscsi_login() {
  local target=$1 name n=0 sess dir ifaces=() i
  shift
  mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
  echo "InitiatorName=$1" > /etc/iscsi/initiatorname.iscsi
  iscsid >/dev/null 2>&1 || { echo "lab: iscsid did not start" >&2; return 1; }
  for name in "$@"; do
    iscsiadm -m iface -I "lab$n" -o new >/dev/null
    iscsiadm -m iface -I "lab$n" -o update -n iface.initiatorname -v "$name" >/dev/null
    ifaces+=(-I "lab$n")
    n=$((n + 1))
  done
  iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 "${ifaces[@]}" >/dev/null
  iscsiadm -m node -T "$target" -p 127.0.0.1:3260 --login >/dev/null || return 1
  for name in "$@"; do
    dir=
    for i in $(seq 1 200); do
      for sess in /sys/class/iscsi_session/session*; do
        [ "$(cat "$sess/initiatorname" 2>/dev/null)" = "$name" ] || continue
        dir=$(ls -d "$sess"/device/target*/*:*:*:0 2>/dev/null | head -n1)
      done
      [ -n "$dir" ] && break
      sleep 0.05
    done
    [ -n "$dir" ] || { echo "lab: no iSCSI session for $name" >&2; return 1; }
    wait_sg "$dir" || return 1
  done
}
