"""brand: the business's name, logo, colour and contact phone (one row) (2026-12-01)"""

from app.db.migrations.shapes import binary, create_table, drop_tables, integer, string, timestamps

revision = '0006'
down_revision = '0005'


def upgrade() -> None:
    create_table('brand',
        string('name', 64),
        string('color', 7),
        string('contact_phone', 20),
        binary('logo'),
        integer('version'),
        string('updated_by', 64),
        *timestamps(),
    )


def downgrade() -> None:
    drop_tables('brand')
