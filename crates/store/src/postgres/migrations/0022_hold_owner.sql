-- The institution that holds a place ($hold): only it books the hold ($book by id).
ALTER TABLE appointments ADD COLUMN held_by BIGINT REFERENCES organisations (id);
