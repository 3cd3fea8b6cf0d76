#include "state/transaction.hpp"

#include "state/database.hpp"

#include <fmt/core.h>

#include <utility>

namespace state {

Transaction::Transaction(Database& db)
  : m_db(&db)
{
}

util::Result<Transaction>
Transaction::begin(Database& db)
{
  if (db.in_transaction()) {
    return util::make_error(
      "bug", fmt::format("{}: a transaction is already open on this connection", db.path()));
  }
  // IMMEDIATE takes the write lock now, so a batch never fails half-way on a lock upgrade.
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) {
    return r.error();
  }
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept
  : m_db(std::exchange(other.m_db, nullptr))
{
}

Transaction::~Transaction()
{
  rollback();
}

util::Result<void>
Transaction::commit()
{
  if (m_db == nullptr) {
    return util::make_error("bug", "commit of a finished transaction");
  }
  if (auto r = m_db->exec("COMMIT"); !r) {
    return r.error();
  }
  m_db = nullptr;
  return {};
}

void
Transaction::rollback()
{
  if (m_db != nullptr && m_db->in_transaction()) {
    // ROLLBACK fails only when no transaction is open, which in_transaction() excluded.
    (void)m_db->exec("ROLLBACK");
  }
  m_db = nullptr;
}

} // namespace state
