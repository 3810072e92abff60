// CapacityBook: what the bid engine has promised out of the provider's capacity. Each entry is
// keyed by order id (a provider holds at most one bid per order, and a won bid becomes that
// order's lease) and holds the order's total resources while we evaluate it, while our bid is
// open and while its lease lives. reserve() only succeeds when the need fits in what is free, so
// concurrent orders can never overcommit.
//
// Thread-safety: none; owned by the engine's strand.
#pragma once

#include <map>
#include <string>

#include "ledger/types.hpp"

namespace mercato::provider::bidengine {

class CapacityBook {
 public:
  explicit CapacityBook(const ledger::Capacity& total) : total_(total) {}

  // "" when `need` fits in what is free, else the first resource short, e.g.
  // "cpu: needs 2, 1500m free of 4". Storage is only checked when the total has storage.
  std::string shortfall(const ledger::Capacity& need) const;
  // Reserves `need` under `key` when it fits; false (nothing changed) when it doesn't. A key
  // that is already reserved keeps its reservation and returns true.
  bool reserve(const std::string& key, const ledger::Capacity& need);
  // Reserves even when it doesn't fit: the ledger says we already hold it (restart rebuild).
  void force(const std::string& key, const ledger::Capacity& need);
  // True when `key` was reserved.
  bool release(const std::string& key);
  bool holds(const std::string& key) const { return entries_.count(key) > 0; }

  const ledger::Capacity& total() const { return total_; }
  const ledger::Capacity& reserved() const { return reserved_; }
  ledger::Capacity free() const;
  size_t size() const { return entries_.size(); }

 private:
  ledger::Capacity total_;
  ledger::Capacity reserved_;
  std::map<std::string, ledger::Capacity> entries_;
};

}  // namespace mercato::provider::bidengine
