#include "provider/bidengine/capacity_book.hpp"

#include "common/units.hpp"

namespace mercato::provider::bidengine {

ledger::Capacity CapacityBook::free() const {
  return {total_.cpu - reserved_.cpu, total_.memory - reserved_.memory,
          total_.storage - reserved_.storage};
}

std::string CapacityBook::shortfall(const ledger::Capacity& need) const {
  const ledger::Capacity f = free();
  if (need.cpu > f.cpu)
    return "cpu: needs " + formatCpu(need.cpu) + ", " + formatCpu(std::max<int64_t>(f.cpu, 0)) +
           " free of " + formatCpu(total_.cpu);
  if (need.memory > f.memory)
    return "memory: needs " + formatBytes(need.memory) + ", " +
           formatBytes(std::max<int64_t>(f.memory, 0)) + " free of " + formatBytes(total_.memory);
  if (total_.storage > 0 && need.storage > f.storage)
    return "storage: needs " + formatBytes(need.storage) + ", " +
           formatBytes(std::max<int64_t>(f.storage, 0)) + " free of " + formatBytes(total_.storage);
  return "";
}

bool CapacityBook::reserve(const std::string& key, const ledger::Capacity& need) {
  if (holds(key)) return true;
  if (!shortfall(need).empty()) return false;
  force(key, need);
  return true;
}

void CapacityBook::force(const std::string& key, const ledger::Capacity& need) {
  if (holds(key)) return;
  entries_[key] = need;
  reserved_.cpu += need.cpu;
  reserved_.memory += need.memory;
  reserved_.storage += need.storage;
}

bool CapacityBook::release(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  reserved_.cpu -= it->second.cpu;
  reserved_.memory -= it->second.memory;
  reserved_.storage -= it->second.storage;
  entries_.erase(it);
  return true;
}

}  // namespace mercato::provider::bidengine
