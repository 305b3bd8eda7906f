-- The pricing engine's reference data: Meta's markets, the country → market mapping, rate
-- cards (effective-dated Meta rates by market × category), FX rates and Kloyst's margins.
-- Rate card figures are NOT here: a CSV shipped in the repository is loaded by a command.

CREATE TABLE markets (
    name          text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    kind          text NOT NULL CHECK (kind IN ('COUNTRY', 'REGION', 'OTHER')),
    -- NULL: a market of the reference rate card (Meta, effective 2026-04-01). A date: the first
    -- card on which Meta prices this country separately (reported by third parties; until a
    -- loaded card has entries for it, its countries are priced in their region, see below).
    listed_since  date NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE markets IS 'Meta pricing markets. Rate card loaders may add markets Meta introduces later.';

-- Every ISO 3166-1 country (plus AC, TA and XK, which libphonenumber also returns) → market.
-- market:            the market per the reference card. Countries that share a calling code
--                    with a listed country are priced like it (Meta prices by calling code):
--                    NANP +1 → North America except DO, JM, PR (Rest of Latin America);
--                    +7 KZ → Russia; +44 GG/IM/JE → United Kingdom; +358 AX → Finland's region…
-- standalone_market: set for countries Meta lists separately on newer cards; used instead of
--                    `market` when the rate card being applied has entries for it
--                    (see rate_card_market()).
-- calling_code:      ITU country calling code from libphonenumber's metadata (informational;
--                    the application resolves numbers to a country with libphonenumber).
CREATE TABLE country_markets (
    country            text PRIMARY KEY CHECK (country ~ '^[A-Z]{2}$'),
    name               text NOT NULL,
    calling_code       text NULL CHECK (calling_code ~ '^[1-9][0-9]{0,2}$'),
    market             text NOT NULL REFERENCES markets (name) ON UPDATE CASCADE ON DELETE RESTRICT,
    standalone_market  text NULL REFERENCES markets (name) ON UPDATE CASCADE ON DELETE RESTRICT,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX country_markets_calling_code_idx ON country_markets (calling_code);
CREATE TRIGGER country_markets_set_updated_at BEFORE UPDATE ON country_markets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE rate_cards (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Meta's cards start on a date in the WABA's time zone; the loader stores the instant
    effective_from  timestamptz NOT NULL,
    effective_to    timestamptz NULL,
    source          text NULL,                   -- URL / file the figures came from
    is_sample       boolean NOT NULL DEFAULT false,  -- sample figures, not Meta's published card
    notes           text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rate_cards_name_key UNIQUE (name),
    CONSTRAINT rate_cards_currency_effective_from_key UNIQUE (currency, effective_from),
    CHECK (effective_to IS NULL OR effective_to > effective_from)
);

-- Meta's rate per delivered message, in the card's currency. A missing (market, category)
-- means "not priced on this card" (e.g. AUTHENTICATION_INTERNATIONAL outside its countries,
-- SERVICE before Meta started charging it).
CREATE TABLE rate_card_entries (
    rate_card_id  uuid NOT NULL REFERENCES rate_cards (id) ON DELETE CASCADE,
    market        text NOT NULL REFERENCES markets (name) ON UPDATE CASCADE ON DELETE RESTRICT,
    category      text NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION',
                                                    'AUTHENTICATION_INTERNATIONAL', 'SERVICE')),
    rate          numeric(14, 6) NOT NULL CHECK (rate >= 0),
    PRIMARY KEY (rate_card_id, market, category)
);

-- 1 unit of base_currency = rate units of quote_currency, from effective_from on.
CREATE TABLE fx_rates (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    base_currency   text NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$'),
    quote_currency  text NOT NULL CHECK (quote_currency ~ '^[A-Z]{3}$'),
    rate            numeric(18, 8) NOT NULL CHECK (rate > 0),
    effective_from  timestamptz NOT NULL,
    source          text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fx_rates_pair_effective_from_key UNIQUE (base_currency, quote_currency, effective_from),
    CHECK (base_currency <> quote_currency)
);

-- Kloyst's margin on top of Meta's cost: per plan, overridable per vendor, optionally per
-- category. price = round(meta_cost_in_wallet_currency * (1 + margin_percent / 100)
--                         + fixed_per_message, 4)   (see docs/DATA_MODEL.md)
CREATE TABLE pricing_margins (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_type          text NULL CHECK (plan_type IN ('SHARED', 'DEDICATED')),
    vendor_id          uuid NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    category           text NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION',
                                                     'AUTHENTICATION_INTERNATIONAL', 'SERVICE')),  -- NULL = every category
    margin_percent     numeric(7, 4) NOT NULL DEFAULT 0 CHECK (margin_percent >= 0 AND margin_percent <= 1000),
    fixed_per_message  numeric(14, 4) NOT NULL DEFAULT 0 CHECK (fixed_per_message >= 0),
    currency           text NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),   -- of fixed_per_message
    effective_from     timestamptz NOT NULL DEFAULT now(),
    effective_to       timestamptz NULL,
    note               text NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pricing_margins_one_scope CHECK (num_nonnulls(plan_type, vendor_id) = 1),
    CONSTRAINT pricing_margins_scope_key UNIQUE NULLS NOT DISTINCT (plan_type, vendor_id, category, effective_from),
    CHECK (effective_to IS NULL OR effective_to > effective_from)
);
CREATE INDEX pricing_margins_vendor_idx ON pricing_margins (vendor_id) WHERE vendor_id IS NOT NULL;
CREATE TRIGGER pricing_margins_set_updated_at BEFORE UPDATE ON pricing_margins
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Seed: Meta's markets and the country → market mapping (reference data).
INSERT INTO markets (name, kind, listed_since) VALUES
    ('Argentina', 'COUNTRY', NULL),
    ('Brazil', 'COUNTRY', NULL),
    ('Chile', 'COUNTRY', NULL),
    ('Colombia', 'COUNTRY', NULL),
    ('Egypt', 'COUNTRY', NULL),
    ('France', 'COUNTRY', NULL),
    ('Germany', 'COUNTRY', NULL),
    ('India', 'COUNTRY', NULL),
    ('Indonesia', 'COUNTRY', NULL),
    ('Israel', 'COUNTRY', NULL),
    ('Italy', 'COUNTRY', NULL),
    ('Malaysia', 'COUNTRY', NULL),
    ('Mexico', 'COUNTRY', NULL),
    ('Netherlands', 'COUNTRY', NULL),
    ('Nigeria', 'COUNTRY', NULL),
    ('Pakistan', 'COUNTRY', NULL),
    ('Peru', 'COUNTRY', NULL),
    ('Russia', 'COUNTRY', NULL),
    ('Saudi Arabia', 'COUNTRY', NULL),
    ('South Africa', 'COUNTRY', NULL),
    ('Spain', 'COUNTRY', NULL),
    ('Turkey', 'COUNTRY', NULL),
    ('United Arab Emirates', 'COUNTRY', NULL),
    ('United Kingdom', 'COUNTRY', NULL),
    ('North America', 'REGION', NULL),
    ('Rest of Africa', 'REGION', NULL),
    ('Rest of Asia Pacific', 'REGION', NULL),
    ('Rest of Central & Eastern Europe', 'REGION', NULL),
    ('Rest of Latin America', 'REGION', NULL),
    ('Rest of Middle East', 'REGION', NULL),
    ('Rest of Western Europe', 'REGION', NULL),
    ('Other', 'OTHER', NULL),
    ('Hong Kong', 'COUNTRY', DATE '2026-07-01'),
    ('Hungary', 'COUNTRY', DATE '2026-07-01'),
    ('Poland', 'COUNTRY', DATE '2026-07-01'),
    ('Qatar', 'COUNTRY', DATE '2026-07-01'),
    ('Romania', 'COUNTRY', DATE '2026-07-01'),
    ('Singapore', 'COUNTRY', DATE '2026-07-01'),
    ('Bangladesh', 'COUNTRY', DATE '2026-10-01'),
    ('Iraq', 'COUNTRY', DATE '2026-10-01'),
    ('Kazakhstan', 'COUNTRY', DATE '2026-10-01'),
    ('Kuwait', 'COUNTRY', DATE '2026-10-01'),
    ('Morocco', 'COUNTRY', DATE '2026-10-01'),
    ('Nepal', 'COUNTRY', DATE '2026-10-01'),
    ('Oman', 'COUNTRY', DATE '2026-10-01'),
    ('Sri Lanka', 'COUNTRY', DATE '2026-10-01'),
    ('Ukraine', 'COUNTRY', DATE '2026-10-01');

INSERT INTO country_markets (country, name, calling_code, market, standalone_market) VALUES
    ('AC', 'Ascension Island', '247', 'Other', NULL),
    ('AD', 'Andorra', '376', 'Other', NULL),
    ('AE', 'United Arab Emirates', '971', 'United Arab Emirates', NULL),
    ('AF', 'Afghanistan', '93', 'Rest of Asia Pacific', NULL),
    ('AG', 'Antigua and Barbuda', '1', 'North America', NULL),
    ('AI', 'Anguilla', '1', 'North America', NULL),
    ('AL', 'Albania', '355', 'Rest of Central & Eastern Europe', NULL),
    ('AM', 'Armenia', '374', 'Rest of Central & Eastern Europe', NULL),
    ('AO', 'Angola', '244', 'Rest of Africa', NULL),
    ('AQ', 'Antarctica', '672', 'Other', NULL),
    ('AR', 'Argentina', '54', 'Argentina', NULL),
    ('AS', 'American Samoa', '1', 'North America', NULL),
    ('AT', 'Austria', '43', 'Rest of Western Europe', NULL),
    ('AU', 'Australia', '61', 'Rest of Asia Pacific', NULL),
    ('AW', 'Aruba', '297', 'Other', NULL),
    ('AX', 'Åland Islands', '358', 'Rest of Western Europe', NULL),
    ('AZ', 'Azerbaijan', '994', 'Rest of Central & Eastern Europe', NULL),
    ('BA', 'Bosnia and Herzegovina', '387', 'Other', NULL),
    ('BB', 'Barbados', '1', 'North America', NULL),
    ('BD', 'Bangladesh', '880', 'Rest of Asia Pacific', 'Bangladesh'),
    ('BE', 'Belgium', '32', 'Rest of Western Europe', NULL),
    ('BF', 'Burkina Faso', '226', 'Rest of Africa', NULL),
    ('BG', 'Bulgaria', '359', 'Rest of Central & Eastern Europe', NULL),
    ('BH', 'Bahrain', '973', 'Rest of Middle East', NULL),
    ('BI', 'Burundi', '257', 'Rest of Africa', NULL),
    ('BJ', 'Benin', '229', 'Rest of Africa', NULL),
    ('BL', 'Saint Barthélemy', '590', 'Other', NULL),
    ('BM', 'Bermuda', '1', 'North America', NULL),
    ('BN', 'Brunei Darussalam', '673', 'Other', NULL),
    ('BO', 'Bolivia', '591', 'Rest of Latin America', NULL),
    ('BQ', 'Bonaire, Sint Eustatius and Saba', '599', 'Other', NULL),
    ('BR', 'Brazil', '55', 'Brazil', NULL),
    ('BS', 'Bahamas', '1', 'North America', NULL),
    ('BT', 'Bhutan', '975', 'Other', NULL),
    ('BV', 'Bouvet Island', NULL, 'Other', NULL),
    ('BW', 'Botswana', '267', 'Rest of Africa', NULL),
    ('BY', 'Belarus', '375', 'Rest of Central & Eastern Europe', NULL),
    ('BZ', 'Belize', '501', 'Other', NULL),
    ('CA', 'Canada', '1', 'North America', NULL),
    ('CC', 'Cocos (Keeling) Islands', '61', 'Rest of Asia Pacific', NULL),
    ('CD', 'Congo, The Democratic Republic of the', '243', 'Other', NULL),
    ('CF', 'Central African Republic', '236', 'Other', NULL),
    ('CG', 'Congo', '242', 'Rest of Africa', NULL),
    ('CH', 'Switzerland', '41', 'Rest of Western Europe', NULL),
    ('CI', 'Côte d''Ivoire', '225', 'Rest of Africa', NULL),
    ('CK', 'Cook Islands', '682', 'Other', NULL),
    ('CL', 'Chile', '56', 'Chile', NULL),
    ('CM', 'Cameroon', '237', 'Rest of Africa', NULL),
    ('CN', 'China', '86', 'Rest of Asia Pacific', NULL),
    ('CO', 'Colombia', '57', 'Colombia', NULL),
    ('CR', 'Costa Rica', '506', 'Rest of Latin America', NULL),
    ('CU', 'Cuba', '53', 'Other', NULL),
    ('CV', 'Cabo Verde', '238', 'Other', NULL),
    ('CW', 'Curaçao', '599', 'Other', NULL),
    ('CX', 'Christmas Island', '61', 'Rest of Asia Pacific', NULL),
    ('CY', 'Cyprus', '357', 'Other', NULL),
    ('CZ', 'Czechia', '420', 'Rest of Central & Eastern Europe', NULL),
    ('DE', 'Germany', '49', 'Germany', NULL),
    ('DJ', 'Djibouti', '253', 'Other', NULL),
    ('DK', 'Denmark', '45', 'Rest of Western Europe', NULL),
    ('DM', 'Dominica', '1', 'North America', NULL),
    ('DO', 'Dominican Republic', '1', 'Rest of Latin America', NULL),
    ('DZ', 'Algeria', '213', 'Rest of Africa', NULL),
    ('EC', 'Ecuador', '593', 'Rest of Latin America', NULL),
    ('EE', 'Estonia', '372', 'Other', NULL),
    ('EG', 'Egypt', '20', 'Egypt', NULL),
    ('EH', 'Western Sahara', '212', 'Rest of Africa', NULL),
    ('ER', 'Eritrea', '291', 'Rest of Africa', NULL),
    ('ES', 'Spain', '34', 'Spain', NULL),
    ('ET', 'Ethiopia', '251', 'Rest of Africa', NULL),
    ('FI', 'Finland', '358', 'Rest of Western Europe', NULL),
    ('FJ', 'Fiji', '679', 'Other', NULL),
    ('FK', 'Falkland Islands (Malvinas)', '500', 'Other', NULL),
    ('FM', 'Micronesia, Federated States of', '691', 'Other', NULL),
    ('FO', 'Faroe Islands', '298', 'Other', NULL),
    ('FR', 'France', '33', 'France', NULL),
    ('GA', 'Gabon', '241', 'Rest of Africa', NULL),
    ('GB', 'United Kingdom', '44', 'United Kingdom', NULL),
    ('GD', 'Grenada', '1', 'North America', NULL),
    ('GE', 'Georgia', '995', 'Rest of Central & Eastern Europe', NULL),
    ('GF', 'French Guiana', '594', 'Other', NULL),
    ('GG', 'Guernsey', '44', 'United Kingdom', NULL),
    ('GH', 'Ghana', '233', 'Rest of Africa', NULL),
    ('GI', 'Gibraltar', '350', 'Other', NULL),
    ('GL', 'Greenland', '299', 'Other', NULL),
    ('GM', 'Gambia', '220', 'Rest of Africa', NULL),
    ('GN', 'Guinea', '224', 'Other', NULL),
    ('GP', 'Guadeloupe', '590', 'Other', NULL),
    ('GQ', 'Equatorial Guinea', '240', 'Other', NULL),
    ('GR', 'Greece', '30', 'Rest of Central & Eastern Europe', NULL),
    ('GS', 'South Georgia and the South Sandwich Islands', '500', 'Other', NULL),
    ('GT', 'Guatemala', '502', 'Rest of Latin America', NULL),
    ('GU', 'Guam', '1', 'North America', NULL),
    ('GW', 'Guinea-Bissau', '245', 'Rest of Africa', NULL),
    ('GY', 'Guyana', '592', 'Other', NULL),
    ('HK', 'Hong Kong', '852', 'Rest of Asia Pacific', 'Hong Kong'),
    ('HM', 'Heard Island and McDonald Islands', '672', 'Other', NULL),
    ('HN', 'Honduras', '504', 'Rest of Latin America', NULL),
    ('HR', 'Croatia', '385', 'Rest of Central & Eastern Europe', NULL),
    ('HT', 'Haiti', '509', 'Rest of Latin America', NULL),
    ('HU', 'Hungary', '36', 'Rest of Central & Eastern Europe', 'Hungary'),
    ('ID', 'Indonesia', '62', 'Indonesia', NULL),
    ('IE', 'Ireland', '353', 'Rest of Western Europe', NULL),
    ('IL', 'Israel', '972', 'Israel', NULL),
    ('IM', 'Isle of Man', '44', 'United Kingdom', NULL),
    ('IN', 'India', '91', 'India', NULL),
    ('IO', 'British Indian Ocean Territory', '246', 'Other', NULL),
    ('IQ', 'Iraq', '964', 'Rest of Middle East', 'Iraq'),
    ('IR', 'Iran', '98', 'Other', NULL),
    ('IS', 'Iceland', '354', 'Other', NULL),
    ('IT', 'Italy', '39', 'Italy', NULL),
    ('JE', 'Jersey', '44', 'United Kingdom', NULL),
    ('JM', 'Jamaica', '1', 'Rest of Latin America', NULL),
    ('JO', 'Jordan', '962', 'Rest of Middle East', NULL),
    ('JP', 'Japan', '81', 'Rest of Asia Pacific', NULL),
    ('KE', 'Kenya', '254', 'Rest of Africa', NULL),
    ('KG', 'Kyrgyzstan', '996', 'Other', NULL),
    ('KH', 'Cambodia', '855', 'Rest of Asia Pacific', NULL),
    ('KI', 'Kiribati', '686', 'Other', NULL),
    ('KM', 'Comoros', '269', 'Other', NULL),
    ('KN', 'Saint Kitts and Nevis', '1', 'North America', NULL),
    ('KP', 'North Korea', '850', 'Other', NULL),
    ('KR', 'South Korea', '82', 'Other', NULL),
    ('KW', 'Kuwait', '965', 'Rest of Middle East', 'Kuwait'),
    ('KY', 'Cayman Islands', '1', 'North America', NULL),
    ('KZ', 'Kazakhstan', '7', 'Russia', 'Kazakhstan'),
    ('LA', 'Laos', '856', 'Rest of Asia Pacific', NULL),
    ('LB', 'Lebanon', '961', 'Rest of Middle East', NULL),
    ('LC', 'Saint Lucia', '1', 'North America', NULL),
    ('LI', 'Liechtenstein', '423', 'Other', NULL),
    ('LK', 'Sri Lanka', '94', 'Rest of Asia Pacific', 'Sri Lanka'),
    ('LR', 'Liberia', '231', 'Rest of Africa', NULL),
    ('LS', 'Lesotho', '266', 'Rest of Africa', NULL),
    ('LT', 'Lithuania', '370', 'Rest of Central & Eastern Europe', NULL),
    ('LU', 'Luxembourg', '352', 'Other', NULL),
    ('LV', 'Latvia', '371', 'Rest of Central & Eastern Europe', NULL),
    ('LY', 'Libya', '218', 'Rest of Africa', NULL),
    ('MA', 'Morocco', '212', 'Rest of Africa', 'Morocco'),
    ('MC', 'Monaco', '377', 'Other', NULL),
    ('MD', 'Moldova', '373', 'Rest of Central & Eastern Europe', NULL),
    ('ME', 'Montenegro', '382', 'Other', NULL),
    ('MF', 'Saint Martin (French part)', '590', 'Other', NULL),
    ('MG', 'Madagascar', '261', 'Rest of Africa', NULL),
    ('MH', 'Marshall Islands', '692', 'Other', NULL),
    ('MK', 'North Macedonia', '389', 'Rest of Central & Eastern Europe', NULL),
    ('ML', 'Mali', '223', 'Rest of Africa', NULL),
    ('MM', 'Myanmar', '95', 'Other', NULL),
    ('MN', 'Mongolia', '976', 'Rest of Asia Pacific', NULL),
    ('MO', 'Macao', '853', 'Other', NULL),
    ('MP', 'Northern Mariana Islands', '1', 'North America', NULL),
    ('MQ', 'Martinique', '596', 'Other', NULL),
    ('MR', 'Mauritania', '222', 'Rest of Africa', NULL),
    ('MS', 'Montserrat', '1', 'North America', NULL),
    ('MT', 'Malta', '356', 'Other', NULL),
    ('MU', 'Mauritius', '230', 'Other', NULL),
    ('MV', 'Maldives', '960', 'Other', NULL),
    ('MW', 'Malawi', '265', 'Rest of Africa', NULL),
    ('MX', 'Mexico', '52', 'Mexico', NULL),
    ('MY', 'Malaysia', '60', 'Malaysia', NULL),
    ('MZ', 'Mozambique', '258', 'Rest of Africa', NULL),
    ('NA', 'Namibia', '264', 'Rest of Africa', NULL),
    ('NC', 'New Caledonia', '687', 'Other', NULL),
    ('NE', 'Niger', '227', 'Rest of Africa', NULL),
    ('NF', 'Norfolk Island', '672', 'Other', NULL),
    ('NG', 'Nigeria', '234', 'Nigeria', NULL),
    ('NI', 'Nicaragua', '505', 'Rest of Latin America', NULL),
    ('NL', 'Netherlands', '31', 'Netherlands', NULL),
    ('NO', 'Norway', '47', 'Rest of Western Europe', NULL),
    ('NP', 'Nepal', '977', 'Rest of Asia Pacific', 'Nepal'),
    ('NR', 'Nauru', '674', 'Other', NULL),
    ('NU', 'Niue', '683', 'Other', NULL),
    ('NZ', 'New Zealand', '64', 'Rest of Asia Pacific', NULL),
    ('OM', 'Oman', '968', 'Rest of Middle East', 'Oman'),
    ('PA', 'Panama', '507', 'Rest of Latin America', NULL),
    ('PE', 'Peru', '51', 'Peru', NULL),
    ('PF', 'French Polynesia', '689', 'Other', NULL),
    ('PG', 'Papua New Guinea', '675', 'Rest of Asia Pacific', NULL),
    ('PH', 'Philippines', '63', 'Rest of Asia Pacific', NULL),
    ('PK', 'Pakistan', '92', 'Pakistan', NULL),
    ('PL', 'Poland', '48', 'Rest of Central & Eastern Europe', 'Poland'),
    ('PM', 'Saint Pierre and Miquelon', '508', 'Other', NULL),
    ('PN', 'Pitcairn', '64', 'Rest of Asia Pacific', NULL),
    ('PR', 'Puerto Rico', '1', 'Rest of Latin America', NULL),
    ('PS', 'Palestine, State of', '970', 'Other', NULL),
    ('PT', 'Portugal', '351', 'Rest of Western Europe', NULL),
    ('PW', 'Palau', '680', 'Other', NULL),
    ('PY', 'Paraguay', '595', 'Rest of Latin America', NULL),
    ('QA', 'Qatar', '974', 'Rest of Middle East', 'Qatar'),
    ('RE', 'Réunion', '262', 'Other', NULL),
    ('RO', 'Romania', '40', 'Rest of Central & Eastern Europe', 'Romania'),
    ('RS', 'Serbia', '381', 'Rest of Central & Eastern Europe', NULL),
    ('RU', 'Russian Federation', '7', 'Russia', NULL),
    ('RW', 'Rwanda', '250', 'Rest of Africa', NULL),
    ('SA', 'Saudi Arabia', '966', 'Saudi Arabia', NULL),
    ('SB', 'Solomon Islands', '677', 'Other', NULL),
    ('SC', 'Seychelles', '248', 'Other', NULL),
    ('SD', 'Sudan', '249', 'Rest of Africa', NULL),
    ('SE', 'Sweden', '46', 'Rest of Western Europe', NULL),
    ('SG', 'Singapore', '65', 'Rest of Asia Pacific', 'Singapore'),
    ('SH', 'Saint Helena, Ascension and Tristan da Cunha', '290', 'Other', NULL),
    ('SI', 'Slovenia', '386', 'Rest of Central & Eastern Europe', NULL),
    ('SJ', 'Svalbard and Jan Mayen', '47', 'Rest of Western Europe', NULL),
    ('SK', 'Slovakia', '421', 'Rest of Central & Eastern Europe', NULL),
    ('SL', 'Sierra Leone', '232', 'Rest of Africa', NULL),
    ('SM', 'San Marino', '378', 'Other', NULL),
    ('SN', 'Senegal', '221', 'Rest of Africa', NULL),
    ('SO', 'Somalia', '252', 'Rest of Africa', NULL),
    ('SR', 'Suriname', '597', 'Other', NULL),
    ('SS', 'South Sudan', '211', 'Rest of Africa', NULL),
    ('ST', 'Sao Tome and Principe', '239', 'Other', NULL),
    ('SV', 'El Salvador', '503', 'Rest of Latin America', NULL),
    ('SX', 'Sint Maarten (Dutch part)', '1', 'North America', NULL),
    ('SY', 'Syria', '963', 'Other', NULL),
    ('SZ', 'Eswatini', '268', 'Rest of Africa', NULL),
    ('TA', 'Tristan da Cunha', '290', 'Other', NULL),
    ('TC', 'Turks and Caicos Islands', '1', 'North America', NULL),
    ('TD', 'Chad', '235', 'Rest of Africa', NULL),
    ('TF', 'French Southern Territories', '262', 'Other', NULL),
    ('TG', 'Togo', '228', 'Rest of Africa', NULL),
    ('TH', 'Thailand', '66', 'Rest of Asia Pacific', NULL),
    ('TJ', 'Tajikistan', '992', 'Rest of Asia Pacific', NULL),
    ('TK', 'Tokelau', '690', 'Other', NULL),
    ('TL', 'Timor-Leste', '670', 'Other', NULL),
    ('TM', 'Turkmenistan', '993', 'Rest of Asia Pacific', NULL),
    ('TN', 'Tunisia', '216', 'Rest of Africa', NULL),
    ('TO', 'Tonga', '676', 'Other', NULL),
    ('TR', 'Türkiye', '90', 'Turkey', NULL),
    ('TT', 'Trinidad and Tobago', '1', 'North America', NULL),
    ('TV', 'Tuvalu', '688', 'Other', NULL),
    ('TW', 'Taiwan', '886', 'Rest of Asia Pacific', NULL),
    ('TZ', 'Tanzania', '255', 'Rest of Africa', NULL),
    ('UA', 'Ukraine', '380', 'Rest of Central & Eastern Europe', 'Ukraine'),
    ('UG', 'Uganda', '256', 'Rest of Africa', NULL),
    ('UM', 'United States Minor Outlying Islands', '1', 'North America', NULL),
    ('US', 'United States', '1', 'North America', NULL),
    ('UY', 'Uruguay', '598', 'Rest of Latin America', NULL),
    ('UZ', 'Uzbekistan', '998', 'Rest of Asia Pacific', NULL),
    ('VA', 'Holy See (Vatican City State)', '39', 'Italy', NULL),
    ('VC', 'Saint Vincent and the Grenadines', '1', 'North America', NULL),
    ('VE', 'Venezuela', '58', 'Rest of Latin America', NULL),
    ('VG', 'Virgin Islands, British', '1', 'North America', NULL),
    ('VI', 'Virgin Islands, U.S.', '1', 'North America', NULL),
    ('VN', 'Vietnam', '84', 'Rest of Asia Pacific', NULL),
    ('VU', 'Vanuatu', '678', 'Other', NULL),
    ('WF', 'Wallis and Futuna', '681', 'Other', NULL),
    ('WS', 'Samoa', '685', 'Other', NULL),
    ('XK', 'Kosovo', '383', 'Other', NULL),
    ('YE', 'Yemen', '967', 'Rest of Middle East', NULL),
    ('YT', 'Mayotte', '262', 'Other', NULL),
    ('ZA', 'South Africa', '27', 'South Africa', NULL),
    ('ZM', 'Zambia', '260', 'Rest of Africa', NULL),
    ('ZW', 'Zimbabwe', '263', 'Other', NULL);

-- The rate card in force for a currency at an instant (NULL if none).
CREATE FUNCTION rate_card_at(p_currency text, p_at timestamptz) RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT id FROM rate_cards
    WHERE currency = p_currency AND effective_from <= p_at AND (effective_to IS NULL OR effective_to > p_at)
    ORDER BY effective_from DESC
    LIMIT 1
$$;

-- The market a country is priced in on a given rate card: its standalone market when that card
-- prices it, else its reference market; 'Other' for a country not in country_markets.
CREATE FUNCTION rate_card_market(p_rate_card_id uuid, p_country text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        (SELECT CASE
                    WHEN cm.standalone_market IS NOT NULL AND EXISTS (
                        SELECT 1 FROM rate_card_entries e
                        WHERE e.rate_card_id = p_rate_card_id AND e.market = cm.standalone_market)
                    THEN cm.standalone_market
                    ELSE cm.market
                END
         FROM country_markets cm WHERE cm.country = p_country),
        'Other')
$$;

-- The margin that applies to a vendor for a category at an instant: a vendor override beats
-- the plan's margin, a category-specific row beats an all-categories row, the latest
-- effective_from wins. No row = no margin configured (the application decides; never guess).
CREATE FUNCTION pricing_margin_for(p_vendor_id uuid, p_category text, p_at timestamptz)
    RETURNS TABLE (margin_id uuid, margin_percent numeric, fixed_per_message numeric, currency text)
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT m.id, m.margin_percent, m.fixed_per_message, m.currency
    FROM pricing_margins m
    JOIN vendors v ON v.id = p_vendor_id
    WHERE (m.vendor_id = p_vendor_id OR (m.vendor_id IS NULL AND m.plan_type = v.plan_type))
      AND (m.category IS NULL OR m.category = p_category)
      AND m.effective_from <= p_at AND (m.effective_to IS NULL OR m.effective_to > p_at)
    ORDER BY (m.vendor_id IS NOT NULL) DESC, (m.category IS NOT NULL) DESC, m.effective_from DESC
    LIMIT 1
$$;

-- Reference data: readable by tenants, written only by the system role (loader commands).
GRANT SELECT ON markets, country_markets, rate_cards, rate_card_entries, fx_rates TO kloyst_tenant;

ALTER TABLE pricing_margins ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON pricing_margins FOR SELECT TO kloyst_tenant
    USING (vendor_id IS NULL OR vendor_id = app_current_vendor_id());
GRANT SELECT ON pricing_margins TO kloyst_tenant;
