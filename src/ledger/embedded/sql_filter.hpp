// SqlFilter: a WHERE clause built from the filters a caller actually set, so that SQLite can use
// the index of each column named. (A fixed "(?1 = '' OR col = ?1)" clause cannot use one: every
// filtered listing then scanned its whole table, and the bid engine's per-order "our bids on
// this order" check grew linearly with the bids on the ledger.)
//
// SQLite (without ANALYZE statistics) may also pick the less selective of two usable indexes:
// "order_id = ? AND provider = ?" went through bids_provider, every open bid of the provider.
// unindexed() names a column it must not use an index for (the "+column" form).
//
// Thread-safety: a value type.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mercato::ledger::embedded {

class SqlFilter {
 public:
  // Adds "column = value" when value is not empty. `column` is a trusted identifier.
  SqlFilter& eq(const char* column, const std::string& value) {
    if (value.empty()) return *this;
    where_ += (where_.empty() ? " WHERE " : " AND ") + std::string(column) + " = ?";
    values_.push_back(value);
    return *this;
  }
  // The same, as "+column = value": filters without steering the index choice. For a column
  // filtered together with a more selective one.
  SqlFilter& unindexed(const char* column, const std::string& value) {
    return eq(("+" + std::string(column)).c_str(), value);
  }
  // "SELECT <what> FROM <table> [WHERE ...] <tail>"; `tail` may hold one more '?' (a LIMIT),
  // bound by bind() from `limit` when given.
  std::string sql(const char* what, const char* table, const char* tail) const {
    return std::string("SELECT ") + what + " FROM " + table + where_ + " " + tail;
  }
  void bind(SQLite::Statement& q, int64_t limit = -1) const {
    int i = 1;
    for (const auto& v : values_) q.bind(i++, v);
    if (limit >= 0) q.bind(i, limit);
  }

 private:
  std::string where_;
  std::vector<std::string> values_;
};

}  // namespace mercato::ledger::embedded
